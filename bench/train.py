"""Training benchmarks. Prints short tables; ratios are measured in the same run (the machine may be shared).

    .venv/bin/python bench/train.py speed                      # kimg/hour + peak memory, default preset (~5 min)
    .venv/bin/python bench/train.py speed --preset tiny --res 32
    .venv/bin/python bench/train.py fewshot --budget-min 120 --out runs/bench-fewshot  # ADA vs none, same CPU time
    .venv/bin/python bench/train.py fewshot --kimg 60 --out runs/bench-fewshot-kimg     # ... or the same kimg
    .venv/bin/python bench/train.py fewshot --preset tiny --res 32 --count 16 --heldout 64 --num-gen 64 --kimg 0.1 \
        --out /tmp/fewshot-smoke                                                     # end-to-end check (~2 min)

`speed` trains a few steps on the smiles demo set in a fresh process per setting and reports wall-clock and
CPU-time throughput (CPU time is what a quiet machine would give per core), peak resident memory, and the
generator's rendering speed at batch 8.

`fewshot` trains two models on the same 100-150 procedural smiles — one with ADA, one without augmentation —
both at once with one thread each, either for the same CPU time (`--budget-min`: each run gets SIGTERM after
that many CPU minutes and snapshots) or to the same kimg. It scores both on *held-out* smiles (the next
`--heldout` images of the same generator, never trained on) with SWD and the EfficientNet-Lite0 Fréchet
distance and KID, prints the winner per metric and "ADA wins: yes/no", checks that the comparison was fair
(disjoint sets, equal compute, snapshots on SIGTERM; exit status 1 otherwise) and writes grid-ada.png,
grid-none.png and ada-vs-none.png. Relaunching it continues unfinished runs (--resume latest).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def speed_one(preset: str, res: int, threads: int, steps: int, data: str) -> dict:
    """One setting, in this process: train `steps` steps after a warm-up, render batches of 8."""
    import resource

    import torch

    from latentstudio.data.dataset import ImageDataset
    from latentstudio.training.data import DataOrder, RealBatches
    from latentstudio.training.distributed import Dist
    from latentstudio.training.loop import start, train_step
    from latentstudio.training.report import TickStats

    torch.set_num_threads(threads)
    ds = ImageDataset(data)
    with tempfile.TemporaryDirectory() as tmp:
        s, _, _ = start(ds, Path(tmp), preset, None, Dist(), {"kimg": 1.0}, lambda *a: None)
    data_src = RealBatches(ds, DataOrder(len(ds), s.cfg.batch, 0), s.device)
    phases, stats = s.phases(), TickStats()
    for _ in range(2):
        train_step(s, phases, data_src, stats)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        train_step(s, phases, data_src, stats)
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    kimg = steps * s.cfg.batch / 1000
    G = s.G_ema
    z = torch.randn(8, G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z, None)
        G.synthesis(ws, noise_mode="const")
        t_wall, t_cpu, n = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - t_wall < 5:
            G.synthesis(ws, noise_mode="const")
            n += 8
        r_wall, r_cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    return {"preset": preset, "res": res, "threads": threads, "batch": s.cfg.batch,
            "kimg_per_hour_wall": 3600 * kimg / wall, "kimg_per_hour_per_cpu": 3600 * kimg / cpu,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "render_img_s_wall": n / r_wall, "render_img_s_per_cpu": n / r_cpu,
            "g_params": sum(p.numel() for p in s.G.parameters()), "d_params": sum(p.numel() for p in s.D.parameters())}


def cmd_speed(args) -> None:
    from latentstudio.data.demo import make_demo

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "smiles"
        make_demo("smiles", data, count=144, size=args.res, seed=0)
        rows = []
        print(f"load average before: {load()}", flush=True)
        for threads in args.threads:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
            out = subprocess.run([sys.executable, __file__, "speed-one", "--preset", args.preset, "--res",
                                  str(args.res), "--threads", str(threads), "--steps", str(args.steps), str(data)],
                                 env=env, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"load average after: {load()}  (2-core machine shared with other engineers)")
    r = rows[0]
    print(f"\n{args.preset} at {args.res} px, batch {r['batch']}, G {r['g_params'] / 1e6:.2f} M / "
          f"D {r['d_params'] / 1e6:.2f} M parameters, {args.steps} steps (lazy R1 and path length included)")
    print(f"{'threads':>7} {'kimg/h wall':>12} {'kimg/h per CPU-s':>17} {'peak RSS MB':>12} "
          f"{'render b8 img/s wall':>21} {'render img/s per CPU-s':>23}")
    for r in rows:
        print(f"{r['threads']:>7} {r['kimg_per_hour_wall']:>12.1f} {r['kimg_per_hour_per_cpu']:>17.1f} "
              f"{r['peak_rss_mb']:>12.0f} {r['render_img_s_wall']:>21.1f} {r['render_img_s_per_cpu']:>23.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


FEWSHOT_METRICS = ("swd", "fd_effnet_lite0", "kid_effnet_lite0")  # all: lower is better
BIG_KIMG = 100000  # --budget-min runs are stopped by CPU time, never by kimg


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (all its threads), from /proc; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # stat fields 14 and 15


class FewshotRun:
    """One of the two training runs: its directory, its process and the CPU time it has used so far, kept in
    OUT/<aug>.bench.json so that a relaunched bench continues the same budget."""

    def __init__(self, aug: str, out: Path):
        self.aug, self.dir, self.state_file = aug, out / aug, out / f"{aug}.bench.json"
        self.state = json.loads(self.state_file.read_text()) if self.state_file.is_file() else {"cpu_s": 0.0}
        self.proc, self.base_cpu, self.stopped_by_budget = None, self.state["cpu_s"], False

    def done(self, args) -> bool:
        if not (self.dir / "latest").exists():
            return False
        if args.budget_min:
            return self.state["cpu_s"] >= args.budget_min * 60
        return _kimg(self.dir) >= args.kimg

    def launch(self, data: Path, args) -> None:
        kimg = BIG_KIMG if args.budget_min else args.kimg
        cmd = [sys.executable, "-m", "latentstudio.cli", "train", str(data), "--out", str(self.dir), "--preset",
               args.preset, "--kimg", str(kimg), "--aug", self.aug, "--snap", str(args.snap), "--keep", "2", "--seed",
               "0", "--threads", "1", "--device", "cpu"]
        cmd += ["--ada-kimg", str(args.ada_kimg)] if self.aug == "ada" else []
        if (self.dir / "latest").exists():
            cmd += ["--resume", "latest"]  # a partial run from an earlier, interrupted bench
        env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTSTUDIO_PROGRESS": "0"}
        with open(self.dir.with_suffix(".log"), "a") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(["nice", "-n", "10"] + cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=ROOT)

    def update(self, budget_s: float | None) -> bool:
        """Record the CPU time used; past the budget, SIGTERM (the trainer snapshots and exits). Running?"""
        if self.proc.poll() is not None:
            return False
        cpu = proc_cpu_seconds(self.proc.pid)
        if cpu is not None and not self.stopped_by_budget:
            self.state["cpu_s"] = self.base_cpu + cpu
            self.state_file.write_text(json.dumps(self.state) + "\n")
            if budget_s is not None and self.state["cpu_s"] >= budget_s:
                self.proc.send_signal(signal.SIGTERM)
                self.stopped_by_budget = True
        return True


def train_fewshot(runs: list[FewshotRun], data: Path, args) -> list[str]:
    """Train both runs at once (one thread each) to --kimg or for --budget-min CPU minutes each; returns the
    problems found (a failed run, a budget stop without its snapshot)."""
    budget_s = args.budget_min * 60 if args.budget_min else None
    todo = [r for r in runs if not r.done(args)]
    for r in todo:
        r.launch(data, args)
    while any([r.update(budget_s) for r in todo]):  # a list: every run is updated each round
        time.sleep(2)
    problems = []
    for r in todo:
        ok_codes = (0, 130) if r.stopped_by_budget else (0,)
        if r.proc.returncode not in ok_codes:
            problems.append(f"{r.aug}: training exited with {r.proc.returncode}; see {r.dir.with_suffix('.log')}")
        elif r.stopped_by_budget:
            last = json.loads((r.dir / "metrics.jsonl").read_text().splitlines()[-1])
            if last.get("snapshot") != (r.dir / "latest").resolve().name:
                problems.append(f"{r.aug}: no snapshot written on SIGTERM (last row {last})")
    return problems


def image_hashes(path: Path) -> set[str]:
    import hashlib

    from latentstudio.data.dataset import ImageDataset

    ds = ImageDataset(path)
    return {hashlib.sha256(ds.get_image(i).tobytes()).hexdigest() for i in range(ds.num_images)}


def fewshot_data(out: Path, args) -> tuple[Path, Path]:
    """The training set (demo smiles 0 .. count-1) and the held-out set the runs are scored on (the next
    --heldout smiles: same generator, never seen in training)."""
    from latentstudio.data.demo import make_demo

    data = out / f"smiles{args.count}-{args.res}-seed{args.data_seed}"
    heldout = out / f"heldout{args.heldout}-from{args.count}-{args.res}-seed{args.data_seed}"
    if not data.exists():
        make_demo("smiles", data, count=args.count, size=args.res, seed=args.data_seed, contact_sheet=False)
    if not heldout.exists():
        make_demo("smiles", heldout, count=args.heldout, size=args.res, seed=args.data_seed, start=args.count,
                  contact_sheet=False)
    return data, heldout


def score_fewshot(runs: list[FewshotRun], heldout: Path, out: Path, args) -> dict:
    from latentstudio.io.registry import open_model
    from latentstudio.metrics import compute_metrics
    from latentstudio.training.report import sample_grid

    results = {}
    for r in runs:
        G = open_model(r.dir / "latest", device="cpu").G
        scores = compute_metrics(G, heldout, metrics=FEWSHOT_METRICS, num_gen=args.num_gen, device="cpu")
        prov = json.loads((r.dir / "latest" / "config.json").read_text())["provenance"]
        results[r.aug] = {**{m: scores[m] for m in FEWSHOT_METRICS}, "kimg": _kimg(r.dir),
                          "cpu_s": r.state["cpu_s"], "p": prov.get("ada_p")}
        sample_grid(G, 32).save(out / f"grid-{r.aug}.png")
    return results


def fewshot_checks(runs: list[FewshotRun], results: dict, data: Path, heldout: Path, args) -> list[str]:
    """Is the comparison fair? Disjoint sets, and the same kimg or the same CPU time (within 10 %)."""
    problems = []
    if image_hashes(data) & image_hashes(heldout):
        problems.append("the held-out set shares images with the training set")
    if args.budget_min:
        cpus = [results[r.aug]["cpu_s"] for r in runs]
        if min(cpus) < args.budget_min * 60 or max(cpus) > 1.1 * min(cpus):
            problems.append(f"CPU time differs: {cpus} s for a budget of {args.budget_min * 60:.0f} s")
    elif any(results[r.aug]["kimg"] < args.kimg for r in runs):
        problems.append(f"a run stopped short of {args.kimg} kimg: {[results[r.aug]['kimg'] for r in runs]}")
    return problems


def print_fewshot(results: dict, args, wall: float) -> bool:
    """The table, the winner per metric and the verdict; returns whether ADA won (most metrics)."""
    budget = f"{args.budget_min:g} CPU minutes each" if args.budget_min else f"{args.kimg:g} kimg each"
    print(f"{args.count} smiles at {args.res} px, preset {args.preset}, {budget}, both at once with 1 thread "
          f"(wall {wall:.0f} s), load {load()}; scored on {args.heldout} held-out smiles, {args.num_gen} generated")
    head = f"{'aug':<7} {'kimg':>7} {'CPU s':>7}" + "".join(f" {m:>17}" for m in FEWSHOT_METRICS) + f" {'final p':>8}"
    print(head)
    for aug, r in results.items():
        print(f"{aug:<7} {r['kimg']:>7.2f} {r['cpu_s']:>7.0f}" + "".join(f" {r[m]:>17.4g}" for m in FEWSHOT_METRICS)
              + f" {r['p'] or 0:>8.3f}")
    winners = {m: min(results, key=lambda aug, m=m: results[aug][m]) for m in FEWSHOT_METRICS}
    print(f"{'winner':<23}" + "".join(f" {winners[m]:>17}" for m in FEWSHOT_METRICS))
    wins = sum(w == "ada" for w in winners.values())
    ada_wins = 2 * wins > len(FEWSHOT_METRICS)
    print(f"ADA wins: {'yes' if ada_wins else 'no'} ({wins} of {len(FEWSHOT_METRICS)} metrics, lower is better)")
    return ada_wins


def side_by_side(left: Path, right: Path, labels: tuple[str, str], path: Path) -> None:
    from PIL import Image, ImageDraw

    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    pad, top = 16, 24
    canvas = Image.new("RGB", (a.width + b.width + 3 * pad, max(a.height, b.height) + top + pad), "white")
    canvas.paste(a, (pad, top))
    canvas.paste(b, (2 * pad + a.width, top))
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 6), labels[0], fill=(0, 0, 0))
    draw.text((2 * pad + a.width, 6), labels[1], fill=(0, 0, 0))
    canvas.save(path)


def check_same_setup(out: Path, args) -> None:
    """Runs continued by a relaunched bench must be the same experiment (the budget or kimg may grow)."""
    setup = {"mode": "budget" if args.budget_min else "kimg", "preset": args.preset, "res": args.res,
             "count": args.count, "data_seed": args.data_seed}
    path = out / "bench.json"
    if path.is_file() and json.loads(path.read_text()) != setup:
        raise SystemExit(f"{out} holds runs of another setup ({path.read_text().strip()}); use another --out")
    path.write_text(json.dumps(setup) + "\n")


def cmd_fewshot(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    check_same_setup(out, args)
    data, heldout = fewshot_data(out, args)
    runs = [FewshotRun(aug, out) for aug in ("ada", "none")]
    t0 = time.time()
    problems = train_fewshot(runs, data, args)
    if problems:
        print("\n".join(problems))
        return 1
    results = score_fewshot(runs, heldout, out, args)
    what = f"{args.budget_min:g} CPU min" if args.budget_min else f"{args.kimg:g} kimg"
    side_by_side(out / "grid-ada.png", out / "grid-none.png", (f"--aug ada ({what})", f"--aug none ({what})"),
                 out / "ada-vs-none.png")
    ada_wins = print_fewshot(results, args, time.time() - t0)
    problems = fewshot_checks(runs, results, data, heldout, args)
    print("checks: " + ("ok (held-out set disjoint, same compute" + (", SIGTERM snapshots" if args.budget_min
                                                                    else "") + ")" if not problems
                        else "FAILED: " + "; ".join(problems)))
    (out / "results.json").write_text(json.dumps({"results": results, "ada_wins": ada_wins, "problems": problems,
                                                  "settings": vars(args)}, indent=2, default=str) + "\n")
    print(f"grids: {out / 'grid-ada.png'}, {out / 'grid-none.png'}, {out / 'ada-vs-none.png'}")
    return 1 if problems else 0


def _kimg(run: Path) -> float:
    state = json.loads(((run / "latest").resolve() / "training_state.json").read_text())
    return state["progress"]["nimg"] / 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--preset", default="cpu128")
    s.add_argument("--res", type=int, default=128)
    s.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    s.add_argument("--steps", type=int, default=16)
    s.add_argument("--json", default=None)
    one = sub.add_parser("speed-one")
    one.add_argument("data")
    one.add_argument("--preset", default="cpu128")
    one.add_argument("--res", type=int, default=128)
    one.add_argument("--threads", type=int, default=1)
    one.add_argument("--steps", type=int, default=16)
    f = sub.add_parser("fewshot")
    f.add_argument("--out", default="runs/bench-fewshot")
    f.add_argument("--preset", default="cpu128")
    f.add_argument("--res", type=int, default=64)
    f.add_argument("--count", type=int, default=128, help="training images (the issue: 100-150 of one kind)")
    f.add_argument("--heldout", type=int, default=1000, help="held-out smiles the runs are scored on")
    f.add_argument("--data-seed", type=int, default=0)
    f.add_argument("--kimg", type=float, default=60, help="same-kimg mode: train both runs to this many kimg")
    f.add_argument("--budget-min", type=float, default=None,
                   help="same-compute mode: stop each run after this many CPU minutes (SIGTERM, it snapshots)")
    f.add_argument("--ada-kimg", type=float, default=20)
    f.add_argument("--snap", type=int, default=10)
    f.add_argument("--num-gen", type=int, default=1000)
    args = p.parse_args()
    if args.cmd == "speed":
        cmd_speed(args)
    elif args.cmd == "speed-one":
        print(json.dumps(speed_one(args.preset, args.res, args.threads, args.steps, args.data)))
    else:
        sys.exit(cmd_fewshot(args))


if __name__ == "__main__":
    main()

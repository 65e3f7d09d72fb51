"""Training benchmarks. Prints short tables; ratios are measured in the same run (the machine may be shared).

    .venv/bin/python bench/train.py speed                      # kimg/hour + peak memory, default preset (~5 min)
    .venv/bin/python bench/train.py speed --preset tiny --res 32
    .venv/bin/python bench/train.py fewshot --kimg 60 --out runs/bench-fewshot   # ADA vs no augmentation (hours)

`speed` trains a few steps on the smiles demo set in a fresh process per setting and reports wall-clock and
CPU-time throughput (CPU time is what a quiet machine would give per core), peak resident memory, and the
generator's rendering speed at batch 8. `fewshot` trains two models on the same 100-150 images for the same
number of images shown — one with ADA, one without augmentation — both at once with one thread each (so
they share the machine equally), then scores them with the metrics API and writes the grids side by side.
"""

from __future__ import annotations

import argparse
import json
import os
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


def launch_run(data: Path, out: Path, aug: str, args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "latentstudio.cli", "train", str(data), "--out", str(out), "--preset", args.preset,
           "--kimg", str(args.kimg), "--aug", aug, "--snap", str(args.snap), "--keep", "0", "--seed", "0",
           "--threads", "1", "--device", "cpu"] + (["--ada-kimg", str(args.ada_kimg)] if aug == "ada" else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTSTUDIO_PROGRESS": "0"}
    log = open(out.with_suffix(".log"), "a")
    return subprocess.Popen(["nice", "-n", "10"] + cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


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


def cmd_fewshot(args) -> None:
    import resource

    from latentstudio.data.demo import make_demo
    from latentstudio.io.registry import open_model
    from latentstudio.metrics import compute_metrics
    from latentstudio.training.report import sample_grid

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"smiles{args.count}-{args.res}"
    if not data.exists():
        make_demo("smiles", data, count=args.count, size=args.res, seed=args.data_seed)
    runs = {aug: out / aug for aug in ("ada", "none")}
    todo = {aug: launch_run(data, run, aug, args) for aug, run in runs.items()
            if not (run / "latest").exists() or _kimg(run) < args.kimg}
    t0 = time.time()
    for aug, proc in todo.items():
        if proc.wait() != 0:
            raise SystemExit(f"{aug} run failed; see {runs[aug].with_suffix('.log')}")
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    results = {}
    for aug, run in runs.items():
        G = open_model(run / "latest", device="cpu").G
        results[aug] = compute_metrics(G, data, metrics=("swd", "fd_effnet_lite0"), num_gen=args.num_gen,
                                       device="cpu")
        sample_grid(G, 32).save(out / f"grid-{aug}.png")
        results[aug]["p"] = json.loads((run / "latest" / "config.json").read_text())["provenance"].get("ada_p")
    side_by_side(out / "grid-ada.png", out / "grid-none.png",
                 (f"--aug ada ({args.kimg:g} kimg)", f"--aug none ({args.kimg:g} kimg)"), out / "ada-vs-none.png")
    print(f"{args.count} smiles at {args.res} px, preset {args.preset}, {args.kimg:g} kimg each, both runs at once "
          f"with 1 thread (wall {time.time() - t0:.0f} s, children CPU {cpu:.0f} s), load {load()}")
    print(f"{'aug':<6} {'swd':>8} {'fd_effnet_lite0':>16} {'final p':>8}")
    for aug, r in results.items():
        print(f"{aug:<6} {r['swd']:>8.2f} {r['fd_effnet_lite0']:>16.2f} {r['p'] or 0:>8.3f}")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


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
    f.add_argument("--count", type=int, default=100)
    f.add_argument("--data-seed", type=int, default=0)
    f.add_argument("--kimg", type=float, default=60)
    f.add_argument("--ada-kimg", type=float, default=20)
    f.add_argument("--snap", type=int, default=10)
    f.add_argument("--num-gen", type=int, default=1000)
    args = p.parse_args()
    if args.cmd == "speed":
        cmd_speed(args)
    elif args.cmd == "speed-one":
        print(json.dumps(speed_one(args.preset, args.res, args.threads, args.steps, args.data)))
    else:
        cmd_fewshot(args)


if __name__ == "__main__":
    main()

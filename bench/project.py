"""Benchmark: projection quality and speed, mean-w start vs encoder start, W vs W+.

    .venv/bin/python bench/project.py                                  # built-in model and its encoder
    .venv/bin/python bench/project.py --model runs/x/latest --encoder runs/x/latest/encoder --threads 1
    .venv/bin/python bench/project.py --quick                          # 5/10/20 steps: a smoke test

Targets: held-out generated images (seeds far from anything trained on, known latents, psi 0.8) and
hand-made drawings that are not from the model (the smiles demo generator with another seed, and drawings
made here with Pillow). For each start (mean w, encoder) and space (W, W+) the targets are projected with
the `project` command's settings for 100, 300 and 1000 steps (each a full run of that length, since the
learning-rate schedule depends on it). The table gives PSNR / SSIM / feature distance (HED VGG16,
LPIPS-style) on the 8-bit results, the error of the latent for generated targets, seconds per target and per
step. Target (issue 5): encoder start + 100 steps beats mean-w start + 1000 steps, in >= 5x less time.
Every row of one invocation runs under the same machine conditions; the load average is printed.
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

from latentstudio.data.demo import demo_image
from latentstudio.data.images import resize
from latentstudio.invert import (
    ProjectConfig,
    build_loss,
    default_encoder_dir,
    image_to_target,
    load_encoder,
    project_images,
    refine_settings,
    w_statistics,
)
from latentstudio.invert.outputs import projection_metrics, quantize
from latentstudio.io.registry import open_model
from latentstudio.latent.seeds import z_from_seeds
from latentstudio.render.images import make_grid, tensor_to_pils

HELD_OUT_SEEDS = (900001, 900002, 900003)


def house(size: int) -> Image.Image:
    """A child's drawing of a house under a sun, in felt pen on white paper."""
    img = Image.new("RGB", (256, 256), (250, 248, 240))
    d = ImageDraw.Draw(img)
    d.rectangle((60, 130, 190, 225), outline=(30, 30, 120), width=5)
    d.polygon([(50, 132), (125, 60), (200, 132)], outline=(170, 30, 30), width=5)
    d.rectangle((110, 175, 140, 225), outline=(90, 50, 20), width=4)
    d.ellipse((190, 20, 240, 70), outline=(230, 160, 0), width=5)
    d.line((20, 230, 236, 230), fill=(40, 140, 40), width=4)
    return resize(img, size)


def doodle_face(size: int) -> Image.Image:
    """A quick pencil smiley, drawn with Pillow rather than by the smiles demo generator."""
    img = Image.new("RGB", (256, 256), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.ellipse((38, 30, 218, 222), outline=(60, 60, 60), width=4)
    d.ellipse((88, 90, 104, 112), fill=(40, 40, 40))
    d.ellipse((152, 90, 168, 112), fill=(40, 40, 40))
    d.arc((80, 110, 176, 186), 20, 160, fill=(60, 60, 60), width=5)
    return resize(img, size)


def make_targets(G, stats, args):
    """(generated targets, their ws, drawing targets, drawing names)."""
    seeds = HELD_OUT_SEEDS[: args.generated]
    with torch.no_grad():
        w = G.mapping(z_from_seeds(seeds, G.z_dim, G.device), None)
        ws = stats.w_avg.lerp(w, 0.8)
        generated = G.synthesis(ws, noise_mode="const").clamp(-1, 1)
    res = G.img_resolution
    pool = [("smiles-seed1-0", lambda: demo_image("smiles", 0, res, seed=1)), ("house", lambda: house(res)),
            ("doodle", lambda: doodle_face(res))]
    pool += [(f"smiles-seed1-{i}", lambda i=i: demo_image("smiles", i, res, seed=1)) for i in range(1, 8)]
    chosen = pool[: args.drawings]
    names = [name for name, _ in chosen]
    drawings = [make() for _, make in chosen]
    drawn = torch.cat([image_to_target(img, G) for img in drawings]) if drawings else None
    return quantize(generated).to(G.device), ws, drawn, names


def run_one(G, targets, init_ws, space, steps, loss, stats, enc_seconds):
    cfg = ProjectConfig(steps=steps, space=space, batch=len(targets), **refine_settings(init_ws is None))
    t0 = time.perf_counter()
    proj = project_images(G, targets, cfg, init_ws=init_ws, loss=loss, w_stats=stats, device=G.device,
                          progress=False)
    seconds = time.perf_counter() - t0 + enc_seconds
    return proj, seconds


def summarise(proj, targets, seconds, steps, vgg, ws_true=None, w_std=1.0):
    metrics = projection_metrics(proj.images, targets, vgg=vgg)
    row = {k: float(np.mean([m[k] for m in metrics])) for k in ("psnr", "ssim", "feature_distance")}
    row["per_target"] = metrics
    row["seconds_per_target"] = seconds / len(targets)
    row["seconds_per_step"] = seconds / steps  # whole batch
    if ws_true is not None:
        row["w_error"] = float((proj.ws - ws_true.cpu()).norm(dim=2).mean() / w_std)
    return row


def print_table(title, rows):
    print(f"\n### {title}\n")
    has_w = any("w_error" in r for r in rows)
    head = "| start | space | steps | PSNR dB | SSIM | feat. dist | " + ("w error | " if has_w else "") + \
        "s / target | s / step |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        w = f"{r['w_error']:.3f} | " if has_w else ""
        print(f"| {r['start']} | {r['space']} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
              f"{r['feature_distance']:.4f} | {w}{r['seconds_per_target']:.1f} | {r['seconds_per_step']:.2f} |")


def check_target(title, rows):
    for space in ("w", "w+"):
        enc = next((r for r in rows if r["start"] == "encoder" and r["space"] == space and r["steps"] == 100), None)
        ref = [r for r in rows if r["start"] == "mean" and r["space"] == space]
        if enc is None or not ref:
            continue
        mean = max(ref, key=lambda r: r["steps"])
        wins = [enc["psnr"] > mean["psnr"], enc["ssim"] > mean["ssim"],
                enc["feature_distance"] < mean["feature_distance"]]
        speed = mean["seconds_per_target"] / enc["seconds_per_target"]
        print(f"- {title}, {space.upper()}: encoder+{enc['steps']} vs mean+{mean['steps']}: PSNR {enc['psnr']:.2f} vs "
              f"{mean['psnr']:.2f}, SSIM {enc['ssim']:.3f} vs {mean['ssim']:.3f}, feat. dist "
              f"{enc['feature_distance']:.4f} vs {mean['feature_distance']:.4f} -> better on {sum(wins)}/3; "
              f"{speed:.1f}x less time -> {'MET' if all(wins) and speed >= 5 else 'NOT met'}")


def live_rows(G, encoder, sets, budget_s):
    """The installation's path: encoder + refinement within `budget_s`, one target at a time."""
    from latentstudio.invert import LiveProjector

    t = time.perf_counter()
    live = LiveProjector(G, encoder, device="cpu")
    setup = time.perf_counter() - t
    rows = []
    for title, targets, _ in sets:
        results = [live(targets[i:i + 1], budget_s=budget_s) for i in range(len(targets))]
        rows.append({"set": title, "seconds_max": max(r.seconds for r in results),
                     "seconds_mean": float(np.mean([r.seconds for r in results])),
                     "steps_mean": float(np.mean([r.steps for r in results])),
                     "psnr": float(np.mean([r.psnr for r in results])), "setup_s": setup})
    print(f"\n### Live path (LiveProjector, budget {budget_s:.0f} s; one-time setup {setup:.1f} s)\n")
    print("| targets | seconds (mean / max) | refinement steps | PSNR dB |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['seconds_mean']:.1f} / {r['seconds_max']:.1f} | {r['steps_mean']:.0f} | "
              f"{r['psnr']:.2f} |")
    return rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the built-in model)")
    p.add_argument("--encoder", default=None, help="encoder directory (default: MODEL/encoder)")
    p.add_argument("--steps", default="100,300,1000", help="step counts for the mean-w start")
    p.add_argument("--encoder-steps", default="100,300", help="step counts for the encoder start")
    p.add_argument("--generated", type=int, default=2, help="held-out generated targets (at most 3)")
    p.add_argument("--drawings", type=int, default=3, help="hand-made drawings: a smiles-demo drawing (seed 1), "
                   "a house, a doodle, more smiles")
    p.add_argument("--spaces", default="w,w+")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--live-budget", type=float, default=8.0, help="seconds for the live path (0 = skip it)")
    p.add_argument("--quick", action="store_true", help="5/10/20 steps: checks the script, not the numbers")
    p.add_argument("--out", default="runs/bench-project", help="where the JSON and the picture grid go")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.encoder_steps = "5,10,20", "5,10"
    model = open_model(args.model, device="cpu")
    G = model.G
    encoder = load_encoder(args.encoder or default_encoder_dir(model.path), G, device="cpu")
    stats = w_statistics(G, device="cpu")
    loss = build_loss(ProjectConfig().loss, device="cpu")
    generated, ws_true, drawn, names = make_targets(G, stats, args)
    sets = [("generated", generated, ws_true)] + ([("drawings", drawn, None)] if drawn is not None else [])
    print(f"model {model.path}  encoder {args.encoder or default_encoder_dir(model.path)}  threads "
          f"{torch.get_num_threads()}  load average {os.getloadavg()[0]:.1f} (shared machine)  loss {loss.spec}")
    results, pictures = {}, []
    for title, targets, wt in sets:
        t = time.perf_counter()
        with torch.no_grad():
            enc_ws = encoder(targets)
        enc_seconds = time.perf_counter() - t
        rows = []
        for start, init, counts in (("mean", None, args.steps), ("encoder", enc_ws, args.encoder_steps)):
            for space in args.spaces.split(","):
                for steps in map(int, counts.split(",")):
                    proj, secs = run_one(G, targets, init, space, steps, loss, stats, enc_seconds if init is not None
                                         else 0.0)
                    row = summarise(proj, targets, secs, steps, loss.vgg, wt, stats.w_std)
                    rows.append({"start": start, "space": space, "steps": steps, **row})
                    pictures.append((title, start, space, steps, proj.images))
                    print(f"  {title} {start} {space} {steps}: PSNR {row['psnr']:.2f}  "
                          f"({row['seconds_per_target']:.1f} s/target)", file=sys.stderr, flush=True)
        results[title] = rows
    described = {"generated": "held-out seeds " + ", ".join(map(str, HELD_OUT_SEEDS[:args.generated])),
                 "drawings": ", ".join(names)}
    for title, rows in results.items():
        print_table(f"{title} ({described[title]}; {len(rows and rows[0]['per_target'])} targets)", rows)
    print("\n### Target: encoder + 100 steps beats mean + 1000 steps at >= 5x less time\n")
    for title, rows in results.items():
        check_target(title, rows)
    if args.live_budget > 0:
        results["live"] = live_rows(G, encoder, sets, args.live_budget)
    save(args.out, results, sets, pictures)
    return 0


def save(out, results, sets, pictures):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for title, targets, _ in sets:
        cols = [("target", targets)] + [(f"{s} {sp} {n}", imgs) for t, s, sp, n, imgs in pictures if t == title]
        tiles, labels = [], []
        for i in range(len(targets)):
            for label, imgs in cols:
                tiles.append(tensor_to_pils(imgs[i:i + 1].cpu())[0])
                labels.append(label)
        make_grid(tiles, labels, cols=len(cols)).save(out / f"{title}.png")
    print(f"\nwrote {out}/results.json and {', '.join(t for t, _, _ in sets)}.png grids")


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: `walk` end to end (latents -> images -> H.264 MP4) against the generator alone.

    .venv/bin/python bench/render.py                       # default model (cpu128 random init until it lands)
    .venv/bin/python bench/render.py --model runs/x/latest --frames 300 --batch 8 --sizes model,1280x720

Rows are measured interleaved (generator, then each walk, repeated); the table gives the best run (least
disturbed by other work) and the median, and the overhead of each walk against the generator run just before
it, so the ratios compare runs made under the same machine load; the load average is printed with the table. Targets
(issue 4): >= 30 frames/s end to end on 2 CPU cores, and walk + encoding overhead <= 10% of generator time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latentstudio.errors import ModelFormatError
from latentstudio.io.registry import open_model
from latentstudio.latent.timeline_spec import build_timeline, parse_timeline
from latentstudio.render.layout import FrameLayout, parse_size
from latentstudio.render.stream import iter_frames, render
from latentstudio.render.video import open_writer

MOVES = {
    "interpolate": {"move": "interpolate", "keys": [1, 2, 3], "frames": 150, "loop": True},
    "noise-loop": {"move": "noise-loop", "key": 1, "stops": 7, "frames": 30, "sigma": 0.3},
    "spacewalk": {"move": "spacewalk", "key": 1, "frames": 300, "radius": 0.5, "speed": 0.01},
}


def load_generator(spec: str | None):
    try:
        model = open_model(spec, device="cpu")
        return model.G, str(model.path)
    except ModelFormatError:
        if spec is not None:
            raise
    from latentstudio.models import Generator, get_preset

    torch.manual_seed(0)  # what `latentstudio init-model --preset cpu128` makes: same network, same speed
    return Generator(get_preset("cpu128").generator).eval(), "cpu128 random init (default model not installed)"


def timeline_for(G, move: str, frames: int):
    data = {"space": "w", "segments": [MOVES[move]]}
    timeline = build_timeline(parse_timeline(data), G)
    if timeline.num_frames < frames:
        raise SystemExit(f"--frames {frames}: the {move} timeline has only {timeline.num_frames}")
    return timeline


@torch.no_grad()
def time_generator(G, ws: torch.Tensor, batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, ws.shape[0], batch):
        G.synthesis(ws[i:i + batch], noise_mode="const")
    return time.perf_counter() - t0


def time_walk(G, timeline, frames: int, batch: int, layout: FrameLayout, path: Path, preset: str) -> float:
    """Whole `walk` pipeline for the first `frames` frames: latents, ws, synthesis, layout, uint8, x264, mux."""
    t0 = time.perf_counter()
    size = layout.output_size(G.img_resolution)
    writer = open_writer(path, size, fps=30, preset=preset)
    render(G, [_Prefix(timeline, frames)], [writer], layout, batch=batch, progress=False)
    return time.perf_counter() - t0


class _Prefix:
    """The first `frames` frames of a timeline (what render needs: num_frames and ws)."""

    def __init__(self, timeline, frames: int):
        self.timeline, self.num_frames = timeline, frames

    def ws(self, G, idx):
        return self.timeline.ws(G, idx)

    def iter_ws(self, G, batch=8, start=0, stop=None):
        return self.timeline.iter_ws(G, batch, start, self.num_frames if stop is None else stop)


@torch.no_grad()
def time_encoder(frames_u8: np.ndarray, path: Path, preset: str, batch: int) -> float:
    t0 = time.perf_counter()
    with open_writer(path, (frames_u8.shape[2], frames_u8.shape[1]), fps=30, preset=preset) as w:
        for i in range(0, len(frames_u8), batch):
            w.write(frames_u8[i:i + batch])
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model directory (default: the built-in model, else cpu128)")
    p.add_argument("--frames", type=int, default=240, help="frames per measurement")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", default="model", help="output sizes, comma separated (model or WxH, fill)")
    p.add_argument("--preset", default="medium", help="x264 preset (the walk default is medium)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["LATENTSTUDIO_PROGRESS"] = "0"
    G, source = load_generator(args.model)
    timelines = {m: timeline_for(G, m, args.frames) for m in MOVES}
    ws = timelines["interpolate"].ws(G, np.arange(args.frames))
    time_generator(G, ws[: args.batch * 2], args.batch)  # warm up
    load_before = os.getloadavg()
    results: dict[str, list[float]] = {}
    overheads: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            t_gen = time_generator(G, ws, args.batch)
            results.setdefault("generator only", []).append(t_gen)
            for size_text in args.sizes.split(","):
                layout = FrameLayout(size=parse_size(size_text), fit="fill")
                for move, timeline in timelines.items():
                    name = f"walk {move} -> mp4 ({size_text})"
                    t = time_walk(G, timeline, args.frames, args.batch, layout, Path(tmp) / f"{r}.mp4", args.preset)
                    results.setdefault(name, []).append(t)
                    overheads.setdefault(name, []).append(t / t_gen - 1)
        frames_u8 = np.concatenate(list(iter_frames(G, _Prefix(timelines["interpolate"], args.frames),
                                                    batch=args.batch)))
        t_enc = time_encoder(frames_u8, Path(tmp) / "enc.mp4", args.preset, args.batch)
    load_after = os.getloadavg()
    print(f"model: {source} ({G.img_resolution} px), batch {args.batch}, {args.frames} frames, x264 preset "
          f"{args.preset}, torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}, "
          f"{args.repeats} interleaved repeats")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (the machine is shared)")
    print(f"\n| {'measurement':42s} | frames/s (best) | frames/s (median) | overhead vs generator (best / median "
          "of paired runs) |")
    print(f"|{'-' * 44}|----------------:|------------------:|----------------------------------------------:|")
    best_gen = min(results["generator only"])
    for name, times in results.items():
        over = "-"
        if name in overheads:
            over = f"{(min(times) / best_gen - 1) * 100:+.1f}% / {statistics.median(overheads[name]) * 100:+.1f}%"
        print(f"| {name:42s} | {args.frames / min(times):15.1f} | {args.frames / statistics.median(times):17.1f} "
              f"| {over:>45s} |")
    print(f"| {'encoder only (x264 of the same frames)':42s} | {args.frames / t_enc:15.1f} | {'':17s} | {'-':>45s} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

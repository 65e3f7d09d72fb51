"""`latentstudio render`: a timeline file (keys, moves, screens) into one video per screen + a tiled preview."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserError
from .common import add_command, add_device_argument, check_out_dir, write_run_record
from .walk import OWN_DEFAULT, add_render_options, render_settings


def register(sub) -> None:
    p = add_command(sub, "render", "render a timeline file (YAML/JSON: keys, moves, screens) into videos, one per "
                    "screen, plus a tiled preview; see docs/walks.md",
                    "latentstudio render ballad.yaml --out out/ballad")
    p.add_argument("timeline", metavar="TIMELINE", help="timeline file (.yaml, .yml or .json)")
    p.add_argument("--model", default=argparse.SUPPRESS,
                   help="model directory or NVIDIA .pkl (default: the timeline's `model`, else the built-in model)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--screens", default=None, help="render only these screens (1-based, e.g. 1,3; default: all)"
                   + OWN_DEFAULT)
    p.add_argument("--preview", action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                   help="multi-screen: also write preview.<ext> with every screen tiled (default: yes)")
    add_render_options(p, defaults=False)
    add_device_argument(p)
    p.set_defaults(func=run)


def _select(screens: list, text: str | None) -> list:
    if text is None:
        return screens
    try:
        chosen = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        chosen = []
    if not chosen or any(not 1 <= s <= len(screens) for s in chosen):
        raise UserError(f"--screens {text!r}: this timeline has screens 1..{len(screens)}")
    return [screens[s - 1] for s in chosen]


def _model_spec(args, spec) -> str | None:
    if getattr(args, "model", None):
        return args.model
    if spec.model and not spec.model.startswith(("http://", "https://")) and spec.base_dir:
        return str(Path(spec.base_dir) / spec.model)
    return spec.model


def _open_writers(settings, out: Path, names: list[str], suffix: str, resolution: int, with_preview: bool):
    """One writer per screen (+ the tiled preview); if any cannot be opened, the ones already open are removed."""
    from ..render.layout import tile_grid

    writers = []
    try:
        for name in names:
            writers.append(settings.writer(out / f"{name}{suffix}", resolution))
        preview = None
        if with_preview and settings.preview:
            *_, size = tile_grid(len(names), *writers[0].size, settings.preview_cols, settings.preview_tile)
            preview = settings.writer(out / f"preview{suffix}", resolution, size=size)
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return writers, preview


def run(args) -> int:
    import torch

    from ..io.registry import open_model
    from ..latent.timeline_spec import build_timeline, load_timeline_spec
    from ..render.stream import render

    spec = load_timeline_spec(args.timeline)
    settings = render_settings(args, spec.render)
    out = check_out_dir(args.out)
    screens = _select(spec.screen_specs(), args.screens)
    model = open_model(_model_spec(args, spec), device=args.device)
    G = model.G
    timelines = [build_timeline(spec, G, s) for s in screens]
    multi = len(spec.screen_specs()) > 1
    suffix = settings.suffix()
    names = [s.name if multi else Path(args.timeline).stem for s in screens]
    writers, preview = _open_writers(settings, out, names, suffix, G.img_resolution, len(screens) > 1)
    torch.manual_seed(spec.seed)
    stats = render(G, timelines, writers, settings.layout(), batch=settings.batch, noise_mode=settings.noise_mode,
                   preview=preview, preview_cols=settings.preview_cols, preview_tile=settings.preview_tile,
                   desc=f"render {len(screens)} screen(s)")
    resolved = {"timeline": spec.to_dict(), "render": settings.to_dict(),
                "screens": [{"name": n, "file": str(w.path), "output": w.describe(), **t.describe()}
                            for n, w, t in zip(names, writers, timelines, strict=True)]}
    (out / "timeline.resolved.json").write_text(json.dumps(resolved, indent=2, default=str) + "\n")
    write_run_record(out, "render", args, {"model": str(model.path), "provenance": model.provenance,
                                           "stats": stats.to_dict()})
    frames = timelines[0].num_frames
    cuts = sorted({c for t in timelines for c in t.cuts()})
    print(f"wrote {len(screens)} screen(s) of {frames} frames ({frames / settings.fps:.2f} s at {settings.fps:g} fps)"
          f"{' + preview' if preview else ''} to {out} at {stats.fps:.1f} frames/s"
          + (f"; hard cuts at frames {cuts}" if cuts else ""))
    return 0

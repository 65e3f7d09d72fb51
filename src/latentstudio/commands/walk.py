"""`latentstudio walk`: one move through keys into a video (MP4 / GIF / PNG frames)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from .common import add_command, add_device_argument, add_model_argument, positive_int, write_run_record

MOVES = ("interpolate", "noise-loop", "spacewalk", "circle")
# Prints nothing; its presence tells argparse's ArgumentDefaultsHelpFormatter that the help states the default.
OWN_DEFAULT = "%(default).0s"
DEFAULT_FRAMES = {"interpolate": 150, "noise-loop": 30, "spacewalk": 300, "circle": 300}
DESCRIPTION = """\
Walk through keys (seeds, .npz latents) with one move and write a video (MP4, GIF or PNG frames).

interpolate morphs from key to key. noise-loop, spacewalk and circle are shown around one key; given
several keys (circle: three or more, two make one turn through both), the move is shown at each key and
consecutive keys are joined by --between-frame interpolations, the last back to the first: every move
ends on its key, so the video loops seamlessly (a timeline `sequence` with `loop: true`)."""


def add_space_options(p) -> None:
    p.add_argument("--space", choices=("z", "w", "w+"), default="w",
                   help="where the maths happens: z (through the mapping), w (one w for all layers), w+ (per layer)")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi for seeds and Z walks (1 = none)")
    p.add_argument("--trunc-cutoff", type=int, default=None,
                   help="truncate only the first N ws (default: all)" + OWN_DEFAULT)
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index (conditional models)")


def add_render_options(p, defaults: bool = True) -> None:
    """Output options. With defaults=False, unset options are left out of args (a timeline's values win)."""
    from ..render.layout import FILTERS, FITS
    from ..render.settings import RenderSettings

    d = RenderSettings()
    dflt = (lambda v: v) if defaults else (lambda v: argparse.SUPPRESS)
    p.add_argument("--fps", type=float, default=dflt(d.fps), help="frames per second")
    own = OWN_DEFAULT if defaults else ""  # argparse drops %(default) for SUPPRESS defaults
    p.add_argument("--size", default=dflt(d.size), help="output WIDTHxHEIGHT (default: the model's square)" + own)
    p.add_argument("--fit", choices=FITS, default=dflt(d.fit),
                   help="non-square sizes: fit inside (borders), fill (crop), pad (no scaling), stretch")
    p.add_argument("--filter", choices=FILTERS, default=dflt(d.filter), help="scaling filter")
    p.add_argument("--background", default=dflt(d.background), help="border colour for fit/pad (name or #rrggbb)")
    p.add_argument("--format", choices=("mp4", "gif", "png"), default=dflt(d.format),
                   help="output format (default: from --out: .mp4, .gif, or a directory for PNG frames)" + own)
    p.add_argument("--crf", type=int, default=dflt(d.crf), help="H.264 quality: 18 visually lossless, 23 smaller")
    p.add_argument("--preset", default=dflt(d.preset),
                   help="x264 preset: auto (ultrafast up to 256x256 = 65,536 pixels, else veryfast) or ultrafast"
                        " ... veryfast ... slow ... veryslow (slower: smaller file, same look)")
    p.add_argument("--threads", type=int, default=dflt(d.threads),
                   help="x264 threads (default: 1 up to 640x640 frames, else FFmpeg's choice; 0 = FFmpeg's)" + own)
    p.add_argument("--backend", choices=("auto", "pyav", "ffmpeg"), default=dflt(d.backend),
                   help="MP4 encoder: PyAV or imageio-ffmpeg's ffmpeg")
    p.add_argument("--batch", type=positive_int, default=dflt(d.batch), help="frames per generator call")
    p.add_argument("--noise-mode", dest="noise_mode", choices=("const", "random", "none"),
                   default=dflt(d.noise_mode), help="per-pixel noise (const: no flicker)")


def render_settings(args, base: dict | None = None):
    """RenderSettings from a timeline's `render:` section overridden by the options given on the command line."""
    from ..config import ConfigError
    from ..render.settings import RenderSettings

    names = [f.name for f in RenderSettings.__dataclass_fields__.values()]
    data = dict(base or {})
    data.update({k: getattr(args, k) for k in names if hasattr(args, k)})
    try:
        return RenderSettings.from_dict(data, "render settings")
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def register(sub) -> None:
    from ..latent.moves import NOISE_LOOP_SIGMA
    from ..latent.simplex import NOISES

    p = add_command(sub, "walk", "walk through keys (seeds, .npz latents) with one move and write a video",
                    "latentstudio walk --keys 3,9,out/projected_w.npz --move noise-loop --between 150 --out walk.mp4",
                    description=DESCRIPTION)
    add_model_argument(p)
    p.add_argument("--keys", default=None,
                   help="seeds (7, 3-6) and latent files (projected_w.npz, neighbours/037.npz, f.npz#2), comma "
                        "separated (default: 0,1 for interpolate, else 0; noise-loop, spacewalk and circle take "
                        "several keys too: the move at each key, joined by interpolations)" + OWN_DEFAULT)
    p.add_argument("--move", choices=MOVES, default="interpolate", help="how to move")
    p.add_argument("--frames", type=positive_int, default=None,
                   help="interpolate: frames per pair (150); noise-loop: frames per stop (30); spacewalk and "
                        "circle: frames in all (300)" + OWN_DEFAULT)
    p.add_argument("--between", type=positive_int, default=None,
                   help="noise-loop, spacewalk, circle with several keys: frames of each interpolation between "
                        "keys (default: --frames)" + OWN_DEFAULT)
    p.add_argument("--stops", type=positive_int, default=7, help="noise-loop: number of stops")
    p.add_argument("--sigma", type=float, default=NOISE_LOOP_SIGMA, help="noise-loop: σ of each step between stops")
    p.add_argument("--mode", choices=("linear", "slerp"), default="linear",
                   help="interpolate (and the joins between keys): linear or spherical")
    p.add_argument("--easing", choices=("linear", "ease-in", "ease-out", "ease-in-out", "smoothstep"),
                   default="linear",
                   help="interpolate / noise-loop / joins between keys: speed curve within each segment")
    p.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None,
                   help="interpolate: return to the first key (default no); spacewalk: close the walk (default yes; "
                        "several keys need it)" + OWN_DEFAULT)
    p.add_argument("--radius", type=float, default=0.5, help="spacewalk: σ of the drift around the key")
    p.add_argument("--speed", type=float, default=0.01,
                   help="spacewalk: noise units per frame (about 0.9/speed frames from one extreme to the next)")
    p.add_argument("--noise", choices=NOISES, default="opensimplex",
                   help="spacewalk: the noise (OpenSimplex, as the `opensimplex` package computes it)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random parts of the move")
    add_space_options(p)
    add_render_options(p)
    p.add_argument("--out", required=True, help="output .mp4 / .gif file, or a directory for PNG frames")
    add_device_argument(p)
    p.set_defaults(func=run)


def expand_keys(text: str) -> list[str]:
    """Key text -> one reference per latent (a file with N latents becomes path#0 .. path#N-1)."""
    from ..latent.io import load_latents
    from ..latent.keys import parse_keys

    refs = []
    for spec in parse_keys(text):
        if spec.path is not None and spec.index is None:
            n = len(load_latents(spec.path))
            refs.extend([str(spec)] if n == 1 else [f"{spec.path}#{i}" for i in range(n)])
        else:
            refs.append(str(spec))
    return refs


def _at_key_move(args, frames: int) -> dict:
    """The noise-loop, spacewalk or circle shown at a key, without the key."""
    if args.move == "noise-loop":
        return {"move": "noise-loop", "stops": args.stops, "frames": frames, "sigma": args.sigma,
                "easing": args.easing}
    if args.move == "spacewalk":
        return {"move": "spacewalk", "frames": frames, "radius": args.radius, "speed": args.speed,
                "loop": args.loop is not False, "noise": args.noise}
    return {"move": "circle", "frames": frames}


def _key_sequence(args, keys: list, frames: int) -> dict:
    """Several keys: the move at each key, joined by interpolations, and from the last key back to the first
    (a timeline `sequence` with `loop: true`): every move ends on its key, so the video repeats seamlessly."""
    if args.move == "spacewalk" and args.loop is False:
        raise UserError("--no-loop: with several keys each spacewalk must close on its key, where the "
                        "interpolation to the next key starts; drop --no-loop or write a timeline file")
    between = {"move": "interpolate", "frames": args.between or frames, "mode": args.mode, "easing": args.easing}
    return {"keys": keys, "at_key": _at_key_move(args, frames), "between": between, "loop": True}


def walk_timeline_data(args) -> dict:
    """The walk as timeline-file data (so walks and `render` share one code path and one record format)."""
    keys = expand_keys(args.keys or ("0,1" if args.move == "interpolate" else "0"))
    frames = args.frames or DEFAULT_FRAMES[args.move]
    data = {"space": args.space, "truncation": args.trunc, "truncation_cutoff": args.trunc_cutoff,
            "class": args.class_idx, "seed": args.seed, "end_frame": args.move == "interpolate" and not args.loop}
    if args.move == "interpolate":
        if len(keys) < 2:
            raise UserError("--keys: interpolate needs two or more keys, e.g. --keys 3,9")
        data["segments"] = [{"move": "interpolate", "keys": keys, "frames": frames, "mode": args.mode,
                             "easing": args.easing, "loop": bool(args.loop)}]
    elif len(keys) == 1 or (args.move == "circle" and len(keys) == 2):  # one move (a circle through both keys)
        move = _at_key_move(args, frames)
        move.update({"keys": keys} if args.move == "circle" else {"key": keys[0]})
        data["segments"] = [move]
    else:
        data["sequence"] = _key_sequence(args, keys, frames)
    return data


def run(args) -> int:
    import torch

    from ..config import ConfigError
    from ..io.registry import open_model
    from ..latent.timeline_spec import build_timeline, parse_timeline
    from ..render.stream import render

    settings = render_settings(args)
    out = Path(args.out)
    try:
        spec = parse_timeline(walk_timeline_data(args), "walk")
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    model = open_model(args.model, device=args.device)
    G = model.G
    timeline = build_timeline(spec, G)
    torch.manual_seed(args.seed)  # noise_mode=random stays reproducible
    writer = settings.writer(out, G.img_resolution)
    stats = render(G, [timeline], [writer], settings.layout(), batch=settings.batch, noise_mode=settings.noise_mode,
                   desc="walk")
    is_dir = writer.path.is_dir()
    record = write_run_record(out if is_dir else out.parent, "walk", args,
                              {"model": str(model.path), "provenance": model.provenance, "timeline": spec.to_dict(),
                               "resolved": timeline.describe(), "render": settings.to_dict(),
                               "output": writer.describe(), "stats": stats.to_dict()},
                              filename=None if is_dir else f"{out.name}.json")
    w, h = writer.size
    print(f"wrote {out}: {timeline.num_frames} frames ({timeline.num_frames / settings.fps:.2f} s at "
          f"{settings.fps:g} fps), {w}x{h}, {stats.fps:.1f} frames/s; settings in {record}")
    return 0

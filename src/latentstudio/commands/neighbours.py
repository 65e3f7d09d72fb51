"""`latentstudio neighbours`: N latents around a key, a numbered contact sheet, and picks that become keys."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .common import add_command, add_device_argument, add_model_argument, check_out_dir, positive_int, write_run_record
from .walk import OWN_DEFAULT, add_space_options

# Settings that decide which neighbours come out; a folder made with the same ones can be picked from again.
IDENTITY = ("model", "key", "count", "sigma", "seed", "space", "trunc", "trunc_cutoff", "class_idx")


def register(sub) -> None:
    p = add_command(sub, "neighbours", "scatter N latents around a key with Gaussian noise: images, latents and a "
                    "numbered contact sheet; --pick makes neighbours into a key file",
                    "latentstudio neighbours --key out/projected_w.npz --count 100 --sigma 0.5 --out neighbours "
                    "--pick 37")
    add_model_argument(p)
    p.add_argument("--key", default="0", help="the centre: a seed or a latent file (e.g. projected_w.npz)")
    p.add_argument("--count", type=positive_int, default=100, help="number of neighbours")
    p.add_argument("--sigma", type=float, default=0.5, help="σ of the Gaussian noise (in W: one vector for all layers)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    add_space_options(p)
    p.add_argument("--pick", default=None,
                   help="neighbour number(s) from the sheet, e.g. 37 or 3,37: written to OUT/pick.npz, a key for "
                        "walk --keys / timelines (reuses OUT when it was made with the same settings)" + OWN_DEFAULT)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--thumb", type=positive_int, default=128, help="size of each picture on the contact sheet")
    p.add_argument("--cols", type=positive_int, default=10, help="contact sheet columns")
    p.add_argument("--batch", type=positive_int, default=8, help="images per forward pass")
    p.add_argument("--noise-mode", dest="noise_mode", choices=("const", "random", "none"), default="const",
                   help="per-pixel noise")
    add_device_argument(p)
    p.set_defaults(func=run)


def _identity(args, model_path) -> dict:
    values = {k: getattr(args, k) for k in IDENTITY if k != "model"}
    return {"model": str(model_path), **values}


def _made_with_same_settings(out: Path, identity: dict) -> bool:
    try:
        record = json.loads((out / "neighbours.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return record.get("identity") == identity and (out / "neighbours.npz").is_file()


def run(args) -> int:
    import torch

    from ..io.registry import open_model
    from ..latent.keys import parse_key, resolve_one
    from ..latent.neighbours import parse_picks, sample_neighbours
    from ..latent.space import LatentSpace
    from ..render.neighbours import neighbour_name, pick_neighbours, write_neighbours

    out = check_out_dir(args.out)
    picks = parse_picks(args.pick, args.count) if args.pick is not None else []
    model = open_model(args.model, device=args.device)
    G = model.G
    identity = _identity(args, model.path)
    if not (picks and _made_with_same_settings(out, identity)):
        specs = parse_key(args.key)
        if len(specs) != 1:
            raise UserError(f"--key {args.key!r}: give one key (a seed or a latent file)")
        space = LatentSpace(args.space, args.trunc, args.trunc_cutoff, args.class_idx)
        centre = resolve_one(specs[0], G, space)
        latents = sample_neighbours(centre, space, args.count, args.sigma, args.seed)
        torch.manual_seed(args.seed)
        sheet = write_neighbours(G, space, centre, latents, out, batch=args.batch, noise_mode=args.noise_mode,
                                 thumb=args.thumb, cols=args.cols)
        write_run_record(out, "neighbours", args, {"model": str(model.path), "provenance": model.provenance,
                                                   "identity": identity})
        print(f"wrote {args.count} neighbours of key {args.key} (σ {args.sigma}, {args.space.upper()}) to {out}; "
              f"contact sheet {sheet}")
    else:
        print(f"{out} already holds these neighbours; picking from it")
    if picks:
        path = pick_neighbours(out, picks)
        names = ", ".join(f"{out / neighbour_name(p, args.count)}.npz" for p in picks)
        print(f"picked {names} -> {path}; use it as a key: latentstudio walk --keys {path} ...")
    return 0

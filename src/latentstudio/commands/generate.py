"""`latentstudio generate`: images for seeds, one PNG each, plus an optional labelled grid."""

from __future__ import annotations

from .common import add_command, add_device_argument, add_model_argument, check_out_dir, positive_int, write_run_record


def register(sub) -> None:
    p = add_command(sub, "generate", "render images for seeds (same seeds, same images as NVIDIA's generate.py)",
                    "latentstudio generate --seeds 0-7,12 --trunc 0.7 --out out/seeds --grid")
    add_model_argument(p)
    p.add_argument("--seeds", default="0-7", help="seeds: numbers and inclusive ranges, e.g. 0-7,12")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (1 = none, lower = closer to average)")
    p.add_argument("--trunc-cutoff", type=int, default=None, help="truncate only the first N ws (default: all)")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index (conditional models)")
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const",
                   help="per-pixel noise: the model's fixed noise, fresh noise, or none")
    p.add_argument("--noise-seed", type=int, default=None,
                   help="seed of the random noise (default: a new one each run, written to generate.json)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--grid", action="store_true", help="also write grid.png with every image labelled by seed")
    p.add_argument("--batch", type=positive_int, default=8, help="images per forward pass")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import secrets

    import torch

    from ..io.registry import open_model
    from ..latent.seeds import parse_seeds
    from ..render.generate import seeds_to_ws, synthesize
    from ..render.images import make_grid, save_png, tensor_to_pils

    seeds = parse_seeds(args.seeds)
    out = check_out_dir(args.out)
    model = open_model(args.model, device=args.device)
    # Random noise differs between runs, as in NVIDIA's generate.py; the seed in the run record repeats one.
    noise_seed = args.noise_seed if args.noise_seed is not None else secrets.randbelow(2**31)
    torch.manual_seed(noise_seed)
    ws = seeds_to_ws(model.G, seeds, args.trunc, args.class_idx, args.trunc_cutoff)
    pils = []
    for images in synthesize(model.G, ws, batch=args.batch, noise_mode=args.noise_mode):
        pils.extend(tensor_to_pils(images))
    for seed, img in zip(seeds, pils, strict=True):
        save_png(img, out / f"seed{seed:04d}.png")
    if args.grid:
        save_png(make_grid(pils, [f"seed {s}" for s in seeds]), out / "grid.png")
    write_run_record(out, "generate", args, {"model": str(model.path), "provenance": model.provenance,
                                             "noise_seed": noise_seed})
    print(f"wrote {len(seeds)} image(s) to {out}" + (" and grid.png" if args.grid else ""))
    return 0

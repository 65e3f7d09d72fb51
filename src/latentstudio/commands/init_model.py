"""`latentstudio init-model`: a randomly initialised model directory from a preset (for experiments,
benchmarks, and as the starting point of training)."""

from __future__ import annotations

from .common import add_command


def register(sub) -> None:
    from ..models.config import preset_names

    p = add_command(sub, "init-model", "create a randomly initialised model directory from a preset",
                    "latentstudio init-model --preset cpu128 --out models/random128")
    p.add_argument("--preset", default="cpu128", choices=preset_names(), help="network preset")
    p.add_argument("--resolution", type=int, default=None, help="override the preset's resolution")
    p.add_argument("--channels", type=int, default=3, choices=(1, 3), help="3 = RGB, 1 = grayscale")
    p.add_argument("--seed", type=int, default=0, help="random seed for the initial weights")
    p.add_argument("--out", required=True, help="model directory to write")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..io.model_dir import save_model
    from ..models import Discriminator, Generator, get_preset

    preset = get_preset(args.preset, resolution=args.resolution, img_channels=args.channels)
    torch.manual_seed(args.seed)
    G, D = Generator(preset.generator), Discriminator(preset.discriminator)
    save_model(args.out, G, D=D, provenance={"source": "random-init", "preset": args.preset, "seed": args.seed,
                                             "kimg": 0})
    print(f"wrote untrained {args.preset} model ({preset.generator.img_resolution} px) to {args.out}")
    return 0

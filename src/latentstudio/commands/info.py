"""`latentstudio info`: what a model is, how big, how expensive, where it came from."""

from __future__ import annotations

import json

from .common import add_command, add_device_argument, add_model_argument


def register(sub) -> None:
    p = add_command(sub, "info", "print a model's architecture, size, FLOPs per image and provenance",
                    "latentstudio info runs/smiles/latest")
    add_model_argument(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_device_argument(p)
    p.set_defaults(func=run)


def describe(model) -> dict:
    from ..models.summary import count_parameters, synthesis_flops

    G = model.G
    cfg = G.config
    channels = {r: min(cfg.synthesis.channel_base // r, cfg.synthesis.channel_max)
                for r in G.synthesis.block_resolutions}
    return {
        "path": str(model.path),
        "arch": f"StyleGAN2 ({cfg.synthesis.architecture} generator)",
        "resolution": cfg.img_resolution,
        "channels": "RGB" if cfg.img_channels == 3 else "grayscale",
        "z_dim": cfg.z_dim, "w_dim": cfg.w_dim, "num_ws": G.num_ws, "classes": cfg.c_dim,
        "mapping_layers": cfg.mapping.num_layers,
        "feature_maps": {str(r): c for r, c in channels.items()},
        "generator_parameters": count_parameters(G),
        "discriminator_parameters": count_parameters(model.D) if model.D is not None else None,
        "gflops_per_image": round(synthesis_flops(G) / 1e9, 3),
        "provenance": model.provenance,
    }


def run(args) -> int:
    from ..io.registry import open_model

    model = open_model(args.model, device=args.device, with_discriminator=False)
    info = describe(model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "provenance":
            print("provenance:")
            for k, v in (value or {}).items():
                print(f"  {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
        elif key == "generator_parameters" or key == "discriminator_parameters":
            print(f"{key}: {value:,}" if value is not None else f"{key}: -")
        elif isinstance(value, dict):
            print(f"{key}: " + ", ".join(f"{k}:{v}" for k, v in value.items()))
        else:
            print(f"{key}: {value}")
    return 0

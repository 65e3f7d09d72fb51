"""`latentstudio metrics`: compare a model's images with a dataset (SWD, EfficientNet-Lite0 FD/KID, FID)."""

from __future__ import annotations

from .common import add_device_argument, positive_int


def register(sub) -> None:
    from .common import add_command

    p = add_command(sub, "metrics", "measure how close a model's images are to a dataset (no download)",
                    "latentstudio metrics runs/smiles/latest data/smiles --metrics swd,fd_effnet_lite0 --num 1000",
                    description="Compare generated images with a dataset. swd: sliced Wasserstein distance of "
                    "Laplacian-pyramid patches (x1e3). fd_effnet_lite0 / kid_effnet_lite0: Frechet distance and KID "
                    "in EfficientNet-Lite0 feature space -- NOT Inception FID, compare only with each other. "
                    "fid / kid: real Inception FID/KID, with --inception PATH.")
    p.add_argument("model", metavar="MODEL", help="model directory or NVIDIA .pkl ('default' for the built-in model)")
    p.add_argument("dataset", metavar="DATASET", help="prepared dataset folder or zip")
    p.add_argument("--metrics", default="swd,fd_effnet_lite0,kid_effnet_lite0",
                   help="comma-separated: swd, fd_effnet_lite0, kid_effnet_lite0, fid, kid")
    p.add_argument("--num", type=positive_int, default=1000, help="number of generated images")
    p.add_argument("--num-real", type=positive_int, default=None, help="real images to use (default: all)")
    p.add_argument("--batch", type=positive_int, default=32, help="images per forward pass")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi for the generated images")
    p.add_argument("--seed", type=int, default=0, help="seed for latents and patch sampling")
    p.add_argument("--inception", metavar="PATH", default=None,
                   help="FID Inception weights (pytorch-fid's pt_inception-2015-12-05-*.pth) for fid/kid")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from ..io.registry import open_model
    from ..metrics import compute_metrics
    from ..metrics.compute import parse_metrics

    names = parse_metrics(args.metrics)  # fail on a typo before loading anything
    model = open_model(None if args.model == "default" else args.model, device=args.device)
    results = compute_metrics(model.G, args.dataset, names, num_gen=args.num, batch=args.batch,
                              truncation_psi=args.trunc, device=args.device, num_real=args.num_real, seed=args.seed,
                              inception_path=args.inception)
    if args.json:
        print(json.dumps(results))
    else:
        width = max(len(k) for k in results)
        for key, value in results.items():
            print(f"{key:<{width}}  {value:.4f}")
    return 0

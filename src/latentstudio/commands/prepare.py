"""`latentstudio prepare`: turn a folder of images (or a built-in demo set) into a training dataset."""

from __future__ import annotations

from .common import add_command, positive_int


def register(sub) -> None:
    p = add_command(sub, "prepare", "make a training dataset from a folder of images, or a built-in demo set",
                    "latentstudio prepare --demo smiles --out data/smiles --count 144 --size 128",
                    description="Make a training dataset (a folder of PNGs + dataset.json and/or an NVIDIA-layout "
                    "zip) from a built-in demo set. Writes <out>.report.json and a contact sheet <out>.contact.png "
                    "next to it.")
    p.add_argument("--demo", required=True, metavar="NAME", help="built-in demo set to draw: smiles")
    p.add_argument("--out", required=True, metavar="DATASET", help="dataset folder (or a path ending in .zip)")
    p.add_argument("--size", type=positive_int, default=128, help="image size in pixels (a power of two)")
    p.add_argument("--count", type=positive_int, default=144, help="number of demo images")
    p.add_argument("--seed", type=int, default=0, help="demo set seed (same seed, same images)")
    p.add_argument("--format", dest="fmt", choices=("folder", "zip", "both"), default="folder",
                   help="folder of PNGs, NVIDIA-layout zip (<out>.zip), or both")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.demo import make_demo

    report = make_demo(args.demo, args.out, count=args.count, size=args.size, seed=args.seed, fmt=args.fmt,
                       overwrite=args.overwrite)
    for line in report["summary"]:
        print(line)
    print("dataset: " + ", ".join(report["dataset"]))
    print(f"report: {report['report']}" + (f"; contact sheet: {report['contact_sheet']}"
                                           if "contact_sheet" in report else ""))
    return 0

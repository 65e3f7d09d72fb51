"""Built-in datasets made offline from code (`latentstudio prepare --demo NAME`).

Image `i` of a demo set depends only on (name, seed, i), never on `count` or the machine, so a dataset and
anything trained on it can be rebuilt exactly from its recipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import numpy as np
from PIL import Image

from .. import __version__
from ..errors import UserError
from ..utils.progress import track
from .layout import DatasetWriter, build_meta, check_writable, output_paths


def _smiles(rng: np.random.Generator, size: int) -> Image.Image:
    from .smiles import draw_smile

    return draw_smile(rng, size)


# name -> (drawing function, one-line description)
DEMOS: MappingProxyType[str, tuple[Callable[[np.random.Generator, int], Image.Image], str]] = MappingProxyType({
    "smiles": (_smiles, "hand-drawn-looking smiling faces on paper, like the 144 drawn smiles of a school "
                        "installation"),
})


def demo_names() -> list[str]:
    return sorted(DEMOS)


def demo_image(name: str, index: int, size: int = 128, seed: int = 0) -> Image.Image:
    """Picture `index` of demo set `name` (RGB, size x size)."""
    if name not in DEMOS:
        raise UserError(f"--demo {name!r}: unknown demo set; choose from {', '.join(demo_names())}")
    if size < 8:
        raise UserError(f"--size {size}: demo images need at least 8 pixels")
    rng = np.random.default_rng([seed, index, sum(map(ord, name))])
    return DEMOS[name][0](rng, size)


def demo_images(name: str, count: int, size: int = 128, seed: int = 0, start: int = 0) -> list[Image.Image]:
    return [demo_image(name, i, size, seed) for i in range(start, start + count)]


def make_demo(name: str, out: str | Path, count: int = 144, size: int = 128, seed: int = 0, fmt: str = "folder",
              overwrite: bool = False, contact_sheet: bool = True, mirror: bool = False, start: int = 0) -> dict:
    """Write demo set `name` as a prepared dataset at `out` (a folder, or `out.zip` for fmt='zip'/'both';
    an `out` ending in .zip means a zip): images `start` .. `start + count - 1`, so a set drawn from
    `start=count` shares no image with the first `count` (a held-out set for metrics). `mirror` is recorded
    in dataset.json for training, as `prepare --mirror` does. Returns the report (also written to
    `<out>.report.json`)."""
    from .report import write_report

    if size & (size - 1) or size < 8:
        raise UserError(f"--size {size}: use a power of two such as 64, 128 or 256")
    if count <= 0:
        raise UserError(f"--count {count}: must be at least 1")
    if start < 0:
        raise UserError(f"start {start}: must be 0 or more")
    demo_image(name, 0, 8, seed)  # validates the name before anything is written
    folder, zpath, stem = output_paths(out, fmt)
    check_writable([folder, zpath], overwrite)
    t0 = time.perf_counter()
    kept = []
    with DatasetWriter(folder, zpath) as writer:
        for i in track(range(start, start + count), total=count, desc=f"drawing {name}", unit="img"):
            img = demo_image(name, i, size, seed)
            kept.append({"file": writer.add(img), "source": f"demo:{name}:{seed}:{i}"})
        settings = {"demo": name, "count": count, "size": size, "seed": seed, "format": fmt, "mirror": bool(mirror)}
        source = {"demo": name, "seed": seed, "latentstudio": __version__}
        if start:
            settings["start"] = source["start"] = start
        meta = build_meta(writer.names, None, None, mirror, size, 3, {"source": source})
        writer.close(meta)
    report = {"settings": settings, "kept": kept, "dropped": [], "dataset": [str(p) for p in (folder, zpath) if p],
              "seconds": round(time.perf_counter() - t0, 3), "latentstudio": __version__}
    return write_report(stem, report, folder or zpath, contact_sheet)

"""`prepare`: a folder tree of user images -> a training dataset, a report and a contact sheet.

Every file ends up either kept or dropped with a reason; nothing stops the run except bad arguments. Images
smaller than `min_size` are dropped rather than upscaled; exact duplicates (same decoded pixels) are dropped
after the first; unreadable files are reported and skipped.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from .. import __version__
from ..config import Config
from ..errors import UserError
from ..utils.progress import track
from .images import IMAGE_SUFFIXES, image_size, open_image, parse_color, pixel_hash, resize, square
from .layout import DatasetWriter, build_meta, check_writable, output_paths
from .report import write_report

DUPLICATES_BY = "sha256 of the decoded pixels (after EXIF rotation and alpha flattening, before cropping)"


@dataclasses.dataclass(frozen=True)
class PrepareConfig(Config):
    size: int = 128
    min_size: int | None = None      # None: the output size, i.e. never upscale; 0: keep everything
    crop: str = "center"             # center | pad | none (stretch)
    background: str = "white"        # white | black | #rrggbb, for transparency and padding
    labels: str | None = None        # None | "subfolders"
    mirror: bool = False             # recorded in dataset.json for training (x-flips)
    channels: int = 3                # 3 = RGB, 1 = grayscale
    format: str = "folder"           # folder | zip | both
    workers: int = 0                 # decoding threads; 0 = up to 4, by CPU count

    def check(self) -> PrepareConfig:
        if self.size < 4 or self.size & (self.size - 1):
            raise UserError(f"--size {self.size}: use a power of two such as 64, 128, 256 or 1024")
        if self.crop not in ("center", "pad", "none"):
            raise UserError(f"--crop {self.crop!r}: use center, pad or none")
        if self.labels not in (None, "subfolders"):
            raise UserError(f"--labels {self.labels!r}: the only labelling is 'subfolders'")
        if self.channels not in (1, 3):
            raise UserError(f"--channels {self.channels}: use 3 (RGB) or 1 (grayscale)")
        if self.min_size is not None and self.min_size < 0:
            raise UserError(f"--min-size {self.min_size}: must be 0 or more")
        parse_color(self.background)
        return self

    @property
    def effective_min_size(self) -> int:
        return self.size if self.min_size is None else self.min_size


@dataclasses.dataclass
class Item:
    """One source file on its way through the pipeline."""
    rel: str
    label: str | None = None
    image: Image.Image | None = None
    digest: str | None = None
    reason: str | None = None       # set when dropped
    error: str | None = None        # the decoder's message for unreadable files
    source_size: tuple[int, int] | None = None


def find_files(src: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under src, sorted so a dataset is reproducible."""
    images, others = [], []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith("."):
                continue  # .DS_Store, macOS "._x.jpg" resource forks
            (images if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    return images, others


UNREADABLE = "unreadable (corrupt, truncated or unsupported)"
TOO_LARGE = "too many pixels to decode safely (Pillow's decompression-bomb limit)"


def _load(src: Path, path: Path, cfg: PrepareConfig, background) -> Item:
    """Read, check size, hash, square and resize one file. Never raises for a bad file: whatever fails
    (header, decoding, hashing, cropping, resizing, memory) drops this file with a reason."""
    item = Item(rel=path.relative_to(src).as_posix())
    if cfg.labels == "subfolders":
        parts = Path(item.rel).parts
        if len(parts) < 2:
            item.reason = "not in a class subfolder (--labels subfolders)"
            return item
        item.label = parts[0]
    try:
        w, h = image_size(path)
        item.source_size = (w, h)
        side = max(w, h) if cfg.crop == "pad" else min(w, h)
        if side < cfg.effective_min_size:
            item.reason = f"smaller than --min-size {cfg.effective_min_size}"
            return item
        # Decode big JPEGs reduced, keeping at least twice the output size for a clean Lanczos step.
        img = open_image(path, background, cfg.channels, draft_size=2 * cfg.size if cfg.crop != "none" else None)
        digest = pixel_hash(img)
        item.image = resize(square(img, cfg.crop, background), cfg.size)
        item.digest = digest
    except Exception as exc:  # noqa: BLE001 - any failure on one file drops that file, the run goes on
        item.image = None
        item.reason = TOO_LARGE if isinstance(exc, Image.DecompressionBombError) else UNREADABLE
        item.error = f"{type(exc).__name__}: {exc}"[:200]
    return item


def _items(src: Path, files: list[Path], cfg: PrepareConfig, background) -> Iterator[Item]:
    workers = cfg.workers or min(4, os.cpu_count() or 1)
    if workers <= 1:
        for path in files:
            yield _load(src, path, cfg, background)
        return
    # Pillow releases the GIL while decoding and resizing; map() keeps the order; chunks bound memory.
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(files), 64):
            yield from pool.map(lambda p: _load(src, p, cfg, background), files[start:start + 64])


def prepare_folder(src: str | Path, out: str | Path, cfg: PrepareConfig = PrepareConfig(), overwrite: bool = False,
                   contact_sheet: bool = True) -> dict:
    """Prepare the images under `src` into a dataset at `out` (see `layout.output_paths`); returns the
    report, also written to `<out>.report.json`."""
    cfg = cfg.check()
    src = Path(src).expanduser()
    if not src.is_dir():
        raise UserError(f"SRC {src}: no such folder; give the folder that holds your images")
    background = parse_color(cfg.background)
    folder, zpath, stem = output_paths(out, cfg.format)
    for p in (folder, zpath):
        if p is not None and (p.resolve() == src.resolve() or src.resolve() in p.resolve().parents):
            raise UserError(f"--out {p}: is inside SRC {src}; write the dataset somewhere else")
    check_writable([folder, zpath], overwrite)
    files, others = find_files(src)
    if not files:
        raise UserError(f"SRC {src}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    t0 = time.perf_counter()
    kept, dropped, first_by_digest = [], [], {}
    dropped += [{"source": p.relative_to(src).as_posix(), "reason": "not an image file type"} for p in others]
    with DatasetWriter(folder, zpath) as writer:
        for item in track(_items(src, files, cfg, background), total=len(files), desc="preparing", unit="img"):
            if item.reason is None and item.digest in first_by_digest:
                item.reason = "exact duplicate"
            if item.reason is not None:
                entry = {"source": item.rel, "reason": item.reason}
                if item.reason == "exact duplicate":
                    entry["duplicate_of"] = first_by_digest[item.digest]
                if item.source_size:
                    entry["source_size"] = list(item.source_size)
                if item.error:
                    entry["error"] = item.error
                dropped.append(entry)
                continue
            first_by_digest[item.digest] = item.rel
            name = writer.add(item.image)
            entry = {"file": name, "source": item.rel, "source_size": list(item.source_size)}
            if cfg.labels:
                entry["label"] = item.label  # the folder name; replaced by its class index below
            kept.append(entry)
        class_names, labels = _class_indices(kept) if cfg.labels else (None, None)
        report = {"settings": {"src": str(src), "out": str(out), **cfg.to_dict(),
                               "effective_min_size": cfg.effective_min_size, "duplicates_by": DUPLICATES_BY},
                  "kept": kept, "dropped": dropped, "class_names": class_names,
                  "dataset": [str(p) for p in (folder, zpath) if p], "latentstudio": __version__}
        if not kept:
            write_report(stem, report, None, False)
            raise UserError(f"SRC {src}: no image was kept ({_reasons(dropped)}); see {stem}.report.json, or "
                            "lower --min-size")
        meta = build_meta(writer.names, labels, class_names, cfg.mirror, cfg.size,
                          cfg.channels, {"source": {"prepare": str(src), "latentstudio": __version__}})
        writer.close(meta)
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return write_report(stem, report, folder or zpath, contact_sheet)


def _class_indices(kept: list[dict]) -> tuple[list[str], list[int]]:
    """Classes are the subfolders that kept at least one image, in sorted order, so a folder whose images
    were all dropped does not become an empty class; each kept entry's "label" becomes its index."""
    class_names = sorted({entry["label"] for entry in kept})
    index = {name: i for i, name in enumerate(class_names)}
    for entry in kept:
        entry["label"] = index[entry["label"]]
    return class_names, [entry["label"] for entry in kept]


def _reasons(dropped: list[dict]) -> str:
    from collections import Counter

    return ", ".join(f"{n} {r}" for r, n in Counter(d["reason"] for d in dropped).most_common(3)) or "nothing found"

"""What `prepare` leaves next to a dataset for people: `<out>.report.json` (settings, every kept and dropped
file with the reason) and `<out>.contact.png` (a contact sheet of the kept images)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

MAX_SHEET_IMAGES = 256


def report_paths(stem: str | Path) -> tuple[Path, Path]:
    stem = Path(stem)
    return stem.with_name(stem.name + ".report.json"), stem.with_name(stem.name + ".contact.png")


def contact_sheet(dataset_path: str | Path, names: list[str] | None = None, max_images: int = MAX_SHEET_IMAGES,
                  thumb: int = 96) -> Image.Image:
    """A grid of (an even sample of) the images of a written dataset, read back through `ImageDataset` so the
    sheet also proves the dataset opens; each labelled with its index and, given `names`, its source."""
    from ..render.images import make_grid
    from .dataset import ImageDataset

    ds = ImageDataset(dataset_path, cache_mb=0)
    n = ds.num_images
    picks = np.unique(np.linspace(0, n - 1, min(n, max_images)).round().astype(int))
    size = min(thumb, ds.resolution)
    images = []
    for i in picks:
        arr = ds.get_image(int(i)).transpose(1, 2, 0)
        img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        images.append(img.resize((size, size), Image.LANCZOS) if size != ds.resolution else img)
    chars = max(4, size // 6)
    labels = [f"{i} {Path(names[i]).stem}"[:chars] if names else str(i) for i in picks] if size >= 48 else None
    return make_grid(images, labels)


def summary_lines(report: dict) -> list[str]:
    kept, dropped = report["kept"], report["dropped"]
    lines = [f"kept {len(kept)} image(s)"]
    for reason, count in sorted(Counter(d["reason"] for d in dropped).items(), key=lambda kv: -kv[1]):
        lines.append(f"dropped {count}: {reason}")
    return lines


def write_report(stem: str | Path, report: dict, dataset_path: str | Path | None, sheet: bool = True) -> dict:
    """Write the report JSON (and the contact sheet when there is a dataset); returns the report with the
    paths written added."""
    json_path, sheet_path = report_paths(stem)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    report = dict(report)
    report["summary"] = summary_lines(report)
    if sheet and dataset_path is not None and report["kept"]:
        names = [k["source"] for k in report["kept"]] if "src" in report.get("settings", {}) else None
        contact_sheet(dataset_path, names).save(sheet_path)
        report["contact_sheet"] = str(sheet_path)
    report["report"] = str(json_path)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    return report

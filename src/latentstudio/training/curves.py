"""Training curves as a PNG (drawn with Pillow, no plotting library needed).

One panel per quantity (G and D losses, regularisers, ADA p and r_t, metrics), x axis = kimg.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PANELS = (
    ("losses", ("loss/G", "loss/D")),
    ("regularisers", ("loss/r1", "loss/pl")),
    ("D scores", ("score/real", "score/fake")),
    ("augmentation", ("aug/p", "aug/rt")),
    ("speed (sec/kimg)", ("sec_per_kimg",)),
)
COLORS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def metric_keys(rows: list[dict]) -> tuple[str, ...]:
    keys = []
    for row in rows:
        for k in row.get("metrics", {}):
            if k not in keys:
                keys.append(k)
    return tuple(keys)


def series(rows: list[dict], key: str) -> list[tuple[float, float]]:
    pts = []
    for row in rows:
        value = row.get("metrics", {}).get(key, row.get(key))
        if isinstance(value, (int, float)) and math.isfinite(value):
            pts.append((row["kimg"], float(value)))
    return pts


def plot_curves(rows: list[dict], path: Path, width: int = 900, panel_h: int = 170) -> Path:
    panels = list(PANELS) + [(f"metric {k}", (k,)) for k in metric_keys(rows)]
    panels = [(title, keys) for title, keys in panels if any(series(rows, k) for k in keys)]
    img = Image.new("RGB", (width, max(1, len(panels)) * panel_h), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for i, (title, keys) in enumerate(panels):
        _panel(draw, font, rows, title, keys, (0, i * panel_h, width, (i + 1) * panel_h))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    img.save(tmp)
    tmp.replace(path)
    return path


def _panel(draw, font, rows, title, keys, box):
    x0, y0, x1, y1 = box
    left, right, top, bottom = x0 + 60, x1 - 150, y0 + 18, y1 - 22
    all_pts = [p for k in keys for p in series(rows, k)]
    xs = [p[0] for p in all_pts]
    ys = [p[1] for p in all_pts]
    xmin, xmax = min(xs), max(xs)
    ymin, ymax = min(ys), max(ys)
    if xmax == xmin:
        xmax = xmin + 1e-9
    if ymax == ymin:
        ymin, ymax = ymin - 0.5, ymax + 0.5
    draw.rectangle([left, top, right, bottom], outline=(160, 160, 160))
    draw.text((left, y0 + 3), title, fill=(0, 0, 0), font=font)
    draw.text((x0 + 2, top), f"{ymax:.3g}", fill=(90, 90, 90), font=font)
    draw.text((x0 + 2, bottom - 10), f"{ymin:.3g}", fill=(90, 90, 90), font=font)
    draw.text((left, bottom + 4), f"{xmin:.3g} kimg", fill=(90, 90, 90), font=font)
    draw.text((right - 60, bottom + 4), f"{xmax:.3g} kimg", fill=(90, 90, 90), font=font)

    def to_px(x, y):
        return (left + (x - xmin) / (xmax - xmin) * (right - left),
                bottom - (y - ymin) / (ymax - ymin) * (bottom - top))

    for j, key in enumerate(keys):
        pts = [to_px(x, y) for x, y in series(rows, key)]
        color = COLORS[j % len(COLORS)]
        if len(pts) > 1:
            draw.line(pts, fill=color, width=2)
        for px, py in pts[-1:] if len(pts) > 1 else pts:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=color)
        draw.text((right + 8, top + 14 * j), key, fill=color, font=font)

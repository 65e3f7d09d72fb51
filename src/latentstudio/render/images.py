"""Turning generator output into pictures: uint8 conversion, PNGs and labelled grids."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> [N, H, W, C] uint8, with NVIDIA's rounding (x * 127.5 + 128, clamp).

    One pass from the scaled floats into a channels-last uint8 array (rather than a uint8 NCHW tensor and a
    permuting copy): 0.073 against 0.094 ms a frame at 128 px on the CPU."""
    n, c, h, w = images.shape
    out = torch.empty((n, h, w, c), dtype=torch.uint8, device=images.device)
    out.copy_(images.detach().permute(0, 2, 3, 1).to(torch.float32).mul(127.5).add_(128).clamp_(0, 255))
    return out.cpu().numpy()


def to_pil(array: np.ndarray) -> Image.Image:
    """One [H, W, C] uint8 array -> PIL image (grayscale for one channel)."""
    if array.shape[-1] == 1:
        return Image.fromarray(array[..., 0], "L")
    return Image.fromarray(array, "RGB")


def tensor_to_pils(images: torch.Tensor) -> list[Image.Image]:
    return [to_pil(a) for a in to_uint8(images)]


def pil_to_tensor(image: Image.Image, channels: int = 3) -> torch.Tensor:
    """PIL image -> [1, C, H, W] float in [-1, 1]."""
    image = image.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1


def make_grid(images: Sequence[Image.Image], labels: Sequence[str] | None = None, cols: int | None = None,
              pad: int = 2, background=(255, 255, 255)) -> Image.Image:
    """Tile images into a grid, each optionally labelled underneath (seed numbers, neighbour indices)."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    n = len(images)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    w, h = images[0].size
    font = ImageFont.load_default()
    label_h = 14 if labels else 0
    grid = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + pad + label_h) + pad), background)
    draw = ImageDraw.Draw(grid)
    for i, img in enumerate(images):
        x = pad + (i % cols) * (w + pad)
        y = pad + (i // cols) * (h + pad + label_h)
        grid.paste(img.convert("RGB"), (x, y))
        if labels:
            draw.text((x + 2, y + h + 1), str(labels[i]), fill=(0, 0, 0), font=font)
    return grid


def save_png(image: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path

"""Projection targets: user images squared and resized exactly as `prepare` does (`data.images`)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..data.images import IMAGE_SUFFIXES, flatten, load_square, resize, square
from ..errors import UserError
from ..render.images import pil_to_tensor


def expand_target_paths(paths, recursive: bool = False) -> list[Path]:
    """Files as given; folders contribute their images (sorted; with `recursive`, those of subfolders too, as in
    a prepared dataset's 00000/ folders)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in (p.rglob("*") if recursive else p.iterdir())
                           if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise UserError(f"{p}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p}: no such image file or folder")
    if not out:
        raise UserError("no target images given")
    return out


def load_targets(paths, G, crop: str = "center", background=(255, 255, 255),
                 recursive: bool = False) -> tuple[torch.Tensor, list[Path]]:
    """Targets [N, C, R, R] in [-1, 1] for G (centre-cropped and resized like `prepare`), and their paths."""
    files = expand_target_paths(paths, recursive)
    tensors = []
    for f in files:
        try:
            img = load_square(f, G.img_resolution, crop=crop, background=background, channels=G.img_channels,
                              draft=True)  # big JPEGs decoded reduced, as `prepare` does: the same pixels
        except (OSError, ValueError) as exc:
            raise UserError(f"{f}: not a readable image ({exc})") from None
        tensors.append(pil_to_tensor(img, G.img_channels))
    return torch.cat(tensors), files


def image_to_target(image, G, crop: str = "center", background=(255, 255, 255)) -> torch.Tensor:
    """One PIL image (any size, any mode) or tensor -> [1, C, R, R] in [-1, 1] for G."""
    if isinstance(image, torch.Tensor):
        t = image if image.ndim == 4 else image.unsqueeze(0)
        expected = (G.img_channels, G.img_resolution, G.img_resolution)
        if tuple(t.shape[1:]) != expected:
            raise UserError(f"image tensor has shape {list(t.shape)}; expected [1, {', '.join(map(str, expected))}]")
        return t.to(torch.float32)
    if not isinstance(image, Image.Image):
        raise UserError(f"expected a PIL image or a tensor, got {type(image).__name__}")
    img = resize(square(flatten(image, background, G.img_channels), crop, background), G.img_resolution)
    return pil_to_tensor(img, G.img_channels)

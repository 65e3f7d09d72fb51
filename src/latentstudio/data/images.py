"""Reading and squaring images the same way everywhere (prepare, projection targets, visitor drawings)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageOps

from ..errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def parse_color(text: str) -> tuple[int, int, int]:
    """'white', 'black' or '#rrggbb' -> RGB tuple."""
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise UserError(f"--background {text!r}: use white, black or #rrggbb") from None


def open_image(path: str | Path, background=(255, 255, 255), channels: int = 3, *,
               draft_size: int | None = None) -> Image.Image:
    """Open an image file: first frame, EXIF orientation applied, alpha composited on `background`,
    converted to RGB (channels=3) or L (channels=1). Raises OSError/ValueError for unreadable files.
    `draft_size` lets JPEG decoding shrink by 1/2..1/8 on the fly while both sides stay >= draft_size
    (a large speed-up for big photos that end up small)."""
    with Image.open(path) as img:
        img.seek(0)
        if draft_size and img.format == "JPEG":
            img.draft(img.mode, (draft_size, draft_size))
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except (OSError, ValueError, TypeError, KeyError, SyntaxError):
            pass  # a broken EXIF block only costs the orientation, not the image
        return flatten(img, background, channels)


def flatten(img: Image.Image, background=(255, 255, 255), channels: int = 3) -> Image.Image:
    """Composite any transparency onto `background`, then convert to RGB or L (16-bit and float images
    are scaled to 8 bits instead of clipped)."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            top = 65535.0
        elif img.mode == "F":
            top = 1.0 if arr.max() <= 1 else 255.0
        else:  # "I": older Pillow opens 16-bit PNGs this way
            top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        img = Image.alpha_composite(base, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding pixels (EXIF rotation can swap them)."""
    with Image.open(path) as img:
        return img.size


def pixel_hash(img: Image.Image) -> str:
    """SHA-256 of an image's mode, size and pixels: equal for exact copies whatever the file format or
    metadata; different after any re-compression or edit."""
    h = hashlib.sha256(f"{img.mode}:{img.size[0]}x{img.size[1]}:".encode())
    h.update(img.tobytes())
    return h.hexdigest()


def square(img: Image.Image, mode: str = "center", background=(255, 255, 255)) -> Image.Image:
    """Make an image square: 'center' crops the middle, 'pad' adds `background` borders, 'none' stretches."""
    w, h = img.size
    if mode == "none" or w == h:
        return img
    if mode == "center":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return img.crop((left, top, left + s, top + s))
    if mode == "pad":
        s = max(w, h)
        fill = background if img.mode == "RGB" else int(sum(background) / 3)
        out = Image.new(img.mode, (s, s), fill)
        out.paste(img, ((s - w) // 2, (s - h) // 2))
        return out
    raise UserError(f"--crop {mode!r}: use center, pad or none")


def resize(img: Image.Image, size: int) -> Image.Image:
    """High-quality resize to size x size (Lanczos; box-reduce first for large downscales)."""
    if img.size == (size, size):
        return img
    return img.resize((size, size), Image.LANCZOS, reducing_gap=3.0)


def jpeg_draft_size(size: int, crop: str = "center") -> int | None:
    """How far big JPEGs may be shrunk while decoding for a size x size output: both sides stay at least
    twice the output (room for a clean Lanczos step). None for crop='none', whose stretch needs the full
    aspect ratio. `prepare` and projection targets both decode this way, so they see identical pixels."""
    return 2 * size if crop != "none" else None


def load_square(path: str | Path, size: int, crop: str = "center", background=(255, 255, 255),
                channels: int = 3, *, draft: bool = False) -> Image.Image:
    """open_image -> square -> resize: the one pipeline every user image goes through. draft=True decodes
    big JPEGs reduced exactly as `prepare` does (`jpeg_draft_size`), for the same pixels as a dataset."""
    img = open_image(path, background, channels, draft_size=jpeg_draft_size(size, crop) if draft else None)
    return resize(square(img, crop, background), size)

"""Reading and squaring images the same way everywhere (prepare, projection targets, visitor drawings)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageColor, ImageOps

from ..errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def parse_color(text: str) -> tuple[int, int, int]:
    """'white', 'black' or '#rrggbb' -> RGB tuple."""
    try:
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise UserError(f"--background {text!r}: use white, black or #rrggbb") from None


def open_image(path: str | Path, background=(255, 255, 255), channels: int = 3) -> Image.Image:
    """Open an image file: first frame, EXIF orientation applied, alpha composited on `background`,
    converted to RGB (channels=3) or L (channels=1). Raises OSError/ValueError for unreadable files."""
    with Image.open(path) as img:
        img.seek(0)
        img = ImageOps.exif_transpose(img)
        return flatten(img, background, channels)


def flatten(img: Image.Image, background=(255, 255, 255), channels: int = 3) -> Image.Image:
    """Composite any transparency onto `background`, then convert to RGB or L."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        img = Image.alpha_composite(base, rgba)
    return img.convert("L" if channels == 1 else "RGB")


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


def load_square(path: str | Path, size: int, crop: str = "center", background=(255, 255, 255),
                channels: int = 3) -> Image.Image:
    """open_image -> square -> resize: the one pipeline every user image goes through."""
    return resize(square(open_image(path, background, channels), crop, background), size)

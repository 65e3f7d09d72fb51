"""From generator output to video frames of any size: scaling filter, fit / fill / pad / stretch, tiling.

Models make square images; screens rarely are. `FrameLayout(size=(1920, 1080), fit="fill")` scales and
places a batch [B, C, h, w] (floats in [-1, 1]) onto a W x H canvas and returns uint8 frames [B, H, W, C]:

- fit      scale to fit inside, borders filled with `background` (letterbox)
- fill     scale to cover the canvas, crop the overflow (centred)
- pad      keep the model's size (shrink only if it does not fit), borders filled
- stretch  scale each axis to the canvas (distorts)
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UserError
from .images import to_uint8

FITS = ("fit", "fill", "pad", "stretch")
FILTERS = ("nearest", "bilinear", "bicubic", "area", "lanczos")


def parse_size(text) -> tuple[int, int] | None:
    """'1920x1080' -> (1920, 1080); '512' -> (512, 512); None/'' -> None (the model's size)."""
    if text is None or text == "" or text == "model":
        return None
    if isinstance(text, (tuple, list)) and len(text) == 2:
        w, h = int(text[0]), int(text[1])
    else:
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", str(text))
        if not m:
            raise UserError(f"--size {text!r}: use WIDTHxHEIGHT, e.g. 1920x1080, or one number for a square")
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
    if not (8 <= w <= 8192 and 8 <= h <= 8192):
        raise UserError(f"--size {text!r}: width and height must be between 8 and 8192 pixels")
    return w, h


def _resize(x: torch.Tensor, size: tuple[int, int], filter: str) -> torch.Tensor:
    """x [B, C, h, w] float -> [B, C, H, W] with the chosen filter (size is (W, H))."""
    w, h = size
    if (x.shape[3], x.shape[2]) == (w, h):
        return x
    if filter == "lanczos":
        out = []
        for img in x.float().cpu():
            chans = [Image.fromarray(c.numpy()).resize((w, h), Image.LANCZOS) for c in img]
            out.append(torch.from_numpy(np.stack([np.asarray(c) for c in chans])))
        return torch.stack(out).to(x.device)
    down = w < x.shape[3] or h < x.shape[2]
    if filter in ("bilinear", "bicubic"):
        return F.interpolate(x, size=(h, w), mode=filter, align_corners=False, antialias=down)
    if filter == "area" and not down:  # area averaging only means something when shrinking
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return F.interpolate(x, size=(h, w), mode=filter)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 with NVIDIA's rounding (x * 127.5 + 128, clamp, truncate)."""
    return (x.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def _scaled_uint8(images: torch.Tensor, size: tuple[int, int], filter: str) -> torch.Tensor:
    """[B, C, h, w] in [-1, 1] -> uint8 [B, C, H, W] scaled to size (W, H).

    On the CPU, bilinear and bicubic scale the uint8 picture (channels-last, PIL's kernels): over ten times
    faster than scaling floats, which matters when 128 px frames become 1080p video. Elsewhere, and for the
    other filters, floats are scaled and then rounded."""
    w, h = size
    if (images.shape[3], images.shape[2]) == (w, h):
        return _to_uint8(images)
    if images.device.type == "cpu" and filter in ("bilinear", "bicubic"):
        u8 = _to_uint8(images).contiguous(memory_format=torch.channels_last)
        return F.interpolate(u8, size=(h, w), mode=filter, align_corners=False, antialias=True)
    if filter == "nearest":
        return F.interpolate(_to_uint8(images), size=(h, w), mode="nearest")
    return ((_resize(images.float(), size, filter) * 127.5 + 128).clamp(0, 255)).to(torch.uint8)


@dataclasses.dataclass(frozen=True)
class FrameLayout:
    """Output size (W, H) (None: the model's size), placement and scaling filter."""

    size: tuple[int, int] | None = None
    fit: str = "fit"
    filter: str = "bicubic"
    background: tuple = (0, 0, 0)

    def __post_init__(self):
        if self.fit not in FITS:
            raise UserError(f"--fit {self.fit!r}: use one of {', '.join(FITS)}")
        if self.filter not in FILTERS:
            raise UserError(f"--filter {self.filter!r}: use one of {', '.join(FILTERS)}")

    def output_size(self, width: int, height: int | None = None) -> tuple[int, int]:
        return self.size or (width, height or width)

    def scaled_size(self, w: int, h: int) -> tuple[int, int]:
        """Size the picture is scaled to before it is cropped or padded onto the canvas."""
        cw, ch = self.output_size(w, h)
        if self.fit == "stretch":
            return cw, ch
        scale = {"fit": min(cw / w, ch / h), "fill": max(cw / w, ch / h), "pad": min(1.0, cw / w, ch / h)}[self.fit]
        return max(1, round(w * scale)), max(1, round(h * scale))

    def keeps_size(self, images: torch.Tensor) -> bool:
        """True when frames are the images as they are (the model's own size, the usual walk)."""
        return self.output_size(images.shape[3], images.shape[2]) == (images.shape[3], images.shape[2])

    def apply(self, images: torch.Tensor) -> np.ndarray:
        """[B, C, h, w] in [-1, 1] -> uint8 [B, H, W, C] on the canvas (NVIDIA's rounding: x*127.5+128)."""
        _, c, h, w = images.shape
        cw, ch = self.output_size(w, h)
        if self.keeps_size(images):  # nothing to scale or place
            return to_uint8(images)
        x = _scaled_uint8(images, self.scaled_size(w, h), self.filter)
        sw, sh = x.shape[3], x.shape[2]
        if sw > cw or sh > ch:  # crop the centre
            left, top = max(0, (sw - cw) // 2), max(0, (sh - ch) // 2)
            x = x[:, :, top:top + min(ch, sh), left:left + min(cw, sw)]
            sw, sh = x.shape[3], x.shape[2]
        frames = x.permute(0, 2, 3, 1).contiguous().cpu()
        if (sw, sh) == (cw, ch):
            return frames.numpy()
        bg = np.array(self.background[:c] if c == 3 else [round(sum(self.background) / 3)], dtype=np.uint8)
        canvas = np.empty((frames.shape[0], ch, cw, c), dtype=np.uint8)
        canvas[:] = bg
        left, top = (cw - sw) // 2, (ch - sh) // 2
        canvas[:, top:top + sh, left:left + sw] = frames.numpy()
        return canvas


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """H.264 (yuv420p) needs even width and height."""
    return size[0] + size[0] % 2, size[1] + size[1] % 2


def tile_grid(screens: int, width: int, height: int, cols: int | None = None, tile_width: int = 256,
              gap: int = 4) -> tuple[int, int, int, int]:
    """(cols, tile width, tile height, (total width, total height) made even) of a preview of S screens."""
    cols = cols or (screens if screens <= 8 else math.ceil(math.sqrt(screens)))
    rows = math.ceil(screens / cols)
    tw = min(tile_width, width)
    th = max(1, round(height * tw / width))
    total = even_size((cols * tw + (cols - 1) * gap, rows * th + (rows - 1) * gap))
    return cols, tw, th, total


def tile_frames(screens: list[np.ndarray], cols: int | None = None, tile_width: int = 256, gap: int = 4) -> np.ndarray:
    """Frames of S screens ([B, H, W, C] each, same shape) -> one preview [B, H', W', C], tiled left to right in
    rows of `cols` (default: one row up to 8 screens), each scaled to `tile_width`, even total size."""
    b, h, w, c = screens[0].shape
    cols, tw, th, (width, height) = tile_grid(len(screens), w, h, cols, tile_width, gap)
    out = np.zeros((b, height, width, c), dtype=np.uint8)
    for i, frames in enumerate(screens):
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        small = _resize(x, (tw, th), "area" if tw < w else "bilinear").round().clamp(0, 255).to(torch.uint8)
        r, col = divmod(i, cols)
        top, left = r * (th + gap), col * (tw + gap)
        out[:, top:top + th, left:left + tw] = small.permute(0, 2, 3, 1).numpy()
    return out

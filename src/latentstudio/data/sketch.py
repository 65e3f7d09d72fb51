"""A tiny hand-drawing simulator: pens, paper and wobbly strokes, rendered with Pillow and numpy.

Geometry is given in unit coordinates (0..1 across the picture) and drawn on a supersampled canvas that is
reduced with Lanczos at the end, so the look does not depend on the output size. Each pen draws into its own
coverage mask; masks are laid on the paper with multiply blending (ink darkens paper, overlaps get darker),
and pencil/crayon coverage is broken up by paper grain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Pen:
    kind: str                    # pencil, ballpoint, felt, marker, crayon
    color: tuple[int, int, int]
    width: float                 # stroke width as a fraction of the picture size
    opacity: float = 1.0
    wobble: float = 0.004        # slow hand drift (fraction of picture size)
    jitter: float = 0.0008       # fast tremor
    pressure: float = 0.3        # width variation along the stroke (0 = constant)
    grain: float = 0.0           # how much paper texture breaks the line (pencil, crayon)


INKS = MappingProxyType({
    "graphite": (60, 60, 66), "black": (22, 22, 28), "blue": (28, 48, 150), "navy": (25, 30, 85),
    "red": (190, 35, 40), "green": (30, 115, 60), "purple": (95, 45, 140), "brown": (105, 62, 32),
    "orange": (230, 110, 20), "teal": (20, 110, 120), "magenta": (190, 40, 120),
})
FILLS = MappingProxyType({
    "yellow": (250, 205, 40), "pink": (245, 130, 150), "orange": (248, 150, 60), "skin": (240, 190, 150),
    "lightblue": (120, 180, 235), "lime": (160, 215, 80), "red": (230, 70, 70), "violet": (180, 140, 220),
})
PAPERS = MappingProxyType({
    "white": (248, 248, 245), "offwhite": (243, 239, 228), "cream": (244, 233, 205), "gray": (225, 224, 220),
    "recycled": (226, 218, 200), "yellow": (250, 240, 185), "blue": (220, 232, 245), "pink": (248, 225, 228),
})


def make_pen(kind: str, color, rng: np.random.Generator, scale: float = 1.0) -> Pen:
    """A pen of the given kind with randomised width, pressure and wobble."""
    u = rng.uniform
    if kind == "pencil":
        return Pen(kind, color, u(0.008, 0.014) * scale, u(0.65, 0.9), u(0.002, 0.006), u(0.0005, 0.0012),
                   u(0.3, 0.6), u(0.35, 0.6))
    if kind == "ballpoint":
        return Pen(kind, color, u(0.0055, 0.009) * scale, u(0.8, 0.95), u(0.002, 0.005), u(0.0004, 0.001),
                   u(0.15, 0.35), u(0.0, 0.15))
    if kind == "felt":
        return Pen(kind, color, u(0.011, 0.019) * scale, u(0.85, 1.0), u(0.002, 0.006), u(0.0004, 0.001),
                   u(0.1, 0.25), 0.0)
    if kind == "marker":
        return Pen(kind, color, u(0.02, 0.034) * scale, u(0.75, 0.92), u(0.003, 0.007), u(0.0003, 0.0008),
                   u(0.05, 0.15), 0.0)
    if kind == "crayon":
        return Pen(kind, color, u(0.016, 0.028) * scale, u(0.7, 0.95), u(0.003, 0.008), u(0.0008, 0.0016),
                   u(0.3, 0.5), u(0.5, 0.8))
    raise ValueError(f"unknown pen kind {kind!r}")


def smooth_noise(t: np.ndarray, rng: np.random.Generator, freqs=(1.5, 3.0, 6.0), amps=(1.0, 0.5, 0.25)):
    """A smooth random function of t (sum of sines with random phase and slightly random frequency)."""
    out = np.zeros_like(t)
    for f, a in zip(freqs, amps, strict=True):
        out += a * np.sin(2 * math.pi * f * rng.uniform(0.7, 1.3) * t + rng.uniform(0, 2 * math.pi))
    return out / sum(amps)


def resample(points: np.ndarray, step: float) -> np.ndarray:
    """Points at (about) equal spacing `step` along the polyline."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(math.ceil(s[-1] / step)) + 1)
    t = np.linspace(0, s[-1], n)
    return np.stack([np.interp(t, s, points[:, 0]), np.interp(t, s, points[:, 1])], axis=1)


def hand(points: np.ndarray, pen: Pen, rng: np.random.Generator, step: float = 0.003):
    """Make a geometric path look drawn: slow drift plus tremor across the path, and a pressure profile
    (thin start, a swell, a lifted end). Returns (points, widths) in unit coordinates."""
    pts = resample(np.asarray(points, np.float64), step)
    n = len(pts)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    tangent = np.gradient(pts, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True) + 1e-12
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    drift = pen.wobble * smooth_noise(s, rng, freqs=(1.2, 2.5, 5.0))
    tremor = rng.normal(0, pen.jitter, n)
    tremor = np.convolve(tremor, np.ones(3) / 3, mode="same")
    pts = pts + normal * (drift + tremor)[:, None]
    # A slow sideways push in x/y too, so long strokes bend the way a hand does.
    pts += pen.wobble * 0.5 * np.stack([smooth_noise(s, rng, (0.8,), (1.0,)), smooth_noise(s, rng, (0.8,), (1.0,))], 1)
    t = s / max(s[-1], 1e-9)
    ramp_in = np.clip(t * s[-1] / 0.02, 0, 1)
    ramp_out = np.clip((1 - t) * s[-1] / 0.03, 0, 1)
    taper = 0.45 + 0.55 * np.minimum(ramp_in ** 0.7, ramp_out ** 0.7)
    widths = pen.width * taper * (1 + pen.pressure * 0.6 * smooth_noise(s, rng, (2.0, 5.0), (1.0, 0.5)))
    return pts, np.maximum(widths, pen.width * 0.25)


class Canvas:
    """Paper plus a coverage mask per ink; `render()` composites and reduces to the output size."""

    def __init__(self, size: int, rng: np.random.Generator, paper=(248, 248, 245), supersample: int | None = None):
        self.size = size
        self.ss = supersample or max(2, min(4, math.ceil(256 / size)))
        self.px = size * self.ss
        self.rng = rng
        self.paper = paper
        self.layers: list[tuple[Pen, Image.Image, ImageDraw.ImageDraw]] = []
        self._by_ink: dict[tuple, int] = {}

    @staticmethod
    def _ink(pen: Pen) -> tuple:
        # Pens that differ only in width share a mask: multiply blending does not care about order.
        return (pen.kind, pen.color, pen.opacity, pen.grain)

    def _draw(self, pen: Pen) -> ImageDraw.ImageDraw:
        index = self._by_ink.get(self._ink(pen))
        return self.layers[index][2] if index is not None else self.new_layer(pen)

    def new_layer(self, pen: Pen) -> ImageDraw.ImageDraw:
        """Start a fresh mask for `pen` (later strokes with the same ink go into it)."""
        mask = Image.new("L", (self.px, self.px), 0)
        draw = ImageDraw.Draw(mask)
        self._by_ink[self._ink(pen)] = len(self.layers)
        self.layers.append((pen, mask, draw))
        return draw

    def stroke(self, pen: Pen, points, step: float = 0.005, chunk: int = 10) -> None:
        """Draw a path by hand with `pen`: runs of line segments of one width, with round caps where runs
        meet and at sharp corners so joints show no notches."""
        pts, widths = hand(np.asarray(points, np.float64), pen, self.rng, step)
        draw = self._draw(pen)
        xy = pts * self.px
        wpx = widths * self.px
        n = len(xy)
        starts = np.arange(0, n - 1, chunk)
        run_w = np.add.reduceat(wpx[:-1], starts) / np.diff(np.append(starts, n - 1))
        d = np.diff(xy, axis=0)
        norms = np.linalg.norm(d, axis=1)
        turn = np.einsum("ij,ij->i", d[:-1], d[1:]) < 0.5 * norms[:-1] * norms[1:]  # corners sharper than 60°
        caps = set(starts.tolist()) | set((np.nonzero(turn)[0] + 1).tolist()) | {n - 1}
        for k, i in enumerate(starts):
            j = min(i + chunk + 1, n)
            draw.line(xy[i:j].ravel().tolist(), fill=255, width=max(1, round(float(run_w[k]))))
        for i in caps:
            x, y = xy[i]
            r = wpx[i] / 2
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)

    def blob(self, pen: Pen, center, radius: float, aspect: float = 1.0, angle: float = 0.0) -> None:
        """A filled dot with an irregular edge (an eye, a freckle, a pupil)."""
        k = 18
        th = np.linspace(0, 2 * math.pi, k, endpoint=False)
        r = radius * (1 + 0.12 * smooth_noise(th / (2 * math.pi), self.rng, (1.0, 2.0), (1.0, 0.6)))
        x, y = r * np.cos(th), r * np.sin(th) * aspect
        ca, sa = math.cos(angle), math.sin(angle)
        pts = np.stack([center[0] + ca * x - sa * y, center[1] + sa * x + ca * y], 1) * self.px
        self._draw(pen).polygon(pts.ravel().tolist(), fill=255)

    def polygon(self, pen: Pen, points) -> None:
        self._draw(pen).polygon((np.asarray(points) * self.px).ravel().tolist(), fill=255)

    def clip_last(self, points, grow: float = 0.0) -> None:
        """Keep the newest layer only inside a polygon (colouring that mostly stays within the lines)."""
        _, mask, _ = self.layers[-1]
        shape = Image.new("L", mask.size, 0)
        ImageDraw.Draw(shape).polygon((np.asarray(points) * self.px).ravel().tolist(), fill=255)
        if grow > 0:
            # A box blur then "anything touched" is a cheap square dilation by `grow`.
            shape = shape.filter(ImageFilter.BoxBlur(max(1, int(grow * self.px)))).point(lambda v: 255 if v else 0)
        mask.paste(Image.fromarray(np.minimum(np.asarray(mask), np.asarray(shape))))

    def _grain(self, pen: Pen, h: int, w: int) -> np.ndarray:
        """Paper tooth: coarse noise that leaves light gaps in pencil and crayon strokes."""
        cell = 2 if pen.kind == "pencil" else 3
        g = self.rng.random((h // cell + 1, w // cell + 1), np.float32)
        g = np.repeat(np.repeat(g, cell, 0), cell, 1)[:h, :w]
        return 1 - pen.grain * np.clip(g * 1.4 - 0.35, 0, 1)

    def render(self) -> Image.Image:
        rng, px = self.rng, self.px
        # Uneven light from the scanner or camera, and faint paper fibres.
        ramp = np.linspace(-0.5, 0.5, px, dtype=np.float32)
        gx, gy = rng.normal(0, 0.03, 2)
        light = (1 + gy * ramp)[:, None] * (1 + gx * ramp)[None, :]
        light *= 1 - rng.uniform(0.0, 0.025) * rng.random((px, px), np.float32)
        paper = light[:, :, None] * (np.asarray(self.paper, np.float32) / 255)
        for pen, mask, _ in self.layers:
            box = mask.getbbox()
            if box is None:
                continue
            x0, y0, x1, y1 = box
            a = np.asarray(mask.crop(box), np.float32) * (pen.opacity / 255)
            if pen.grain > 0:
                a *= self._grain(pen, y1 - y0, x1 - x0)
            ink = 1 - np.asarray(pen.color, np.float32) / 255
            paper[y0:y1, x0:x1] *= 1 - a[:, :, None] * ink
        img = Image.fromarray((np.clip(paper, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
        return img.resize((self.size, self.size), Image.LANCZOS)

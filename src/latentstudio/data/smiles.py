"""The "smiles" demo set: faces that look drawn by many different people on paper, like the 144 smiles of
the school installation. Every choice (paper, pens, outline, eyes, mouth, extras, placement) is drawn from
one numpy Generator, so a (seed, index) pair always gives the same picture."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .sketch import FILLS, INKS, PAPERS, Canvas, Pen, make_pen

TAU = 2 * math.pi


def pick(rng: np.random.Generator, weights: dict):
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], np.float64)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def arc(cx, cy, rx, ry, a0, a1, n=48) -> np.ndarray:
    t = np.linspace(a0, a1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


class Face:
    """A face frame: local coordinates have the face centre at 0 and its radius at 1 (y points down);
    `map` turns local points into picture coordinates (placement, size, tilt)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.radius = rng.uniform(0.25, 0.38)
        margin = self.radius * 1.22
        self.center = np.clip(0.5 + rng.normal(0, 0.05, 2) + [0, 0.02], margin, 1 - margin)
        self.tilt = float(np.clip(rng.normal(0, 0.12), -0.35, 0.35))
        self.kind = pick(rng, {"circle": 3, "oval": 2.5, "rounded": 1.2, "irregular": 2, "egg": 1})
        aspect = rng.uniform(0.85, 1.2)
        self.ax, self.ay = (1.0, aspect) if aspect > 1 else (1 / aspect, 1.0)
        if self.kind == "circle":
            self.ax = self.ay = 1.0
        self.harmonics = [(k, rng.uniform(0.015, 0.06) / k ** 0.3, rng.uniform(0, TAU)) for k in (2, 3, 4, 5)]
        self.super_n = rng.uniform(2.8, 5.0)
        self.egg = rng.uniform(-0.12, 0.12)

    def r(self, theta: np.ndarray) -> np.ndarray:
        """Distance from the centre to the outline at angle theta (local units)."""
        c, s = np.cos(theta), np.sin(theta)
        if self.kind == "rounded":
            n = self.super_n
            return (np.abs(c / self.ax) ** n + np.abs(s / self.ay) ** n) ** (-1 / n)
        r = 1 / np.sqrt((c / self.ax) ** 2 + (s / self.ay) ** 2)
        if self.kind == "irregular":
            r = r * (1 + sum(a * np.sin(k * theta + p) for k, a, p in self.harmonics))
        elif self.kind == "egg":
            r = r * (1 + self.egg * s)
        return r

    def boundary(self, theta, scale=1.0) -> np.ndarray:
        theta = np.asarray(theta, np.float64)
        r = self.r(theta) * scale
        return np.stack([r * np.cos(theta), r * np.sin(theta)], -1)

    def map(self, pts) -> np.ndarray:
        pts = np.asarray(pts, np.float64)
        c, s = math.cos(self.tilt), math.sin(self.tilt)
        x, y = pts[..., 0], pts[..., 1]
        return self.center + self.radius * np.stack([c * x - s * y, s * x + c * y], -1)

    def outline_polygon(self, scale=1.0) -> np.ndarray:
        return self.map(self.boundary(np.linspace(0, TAU, 72, endpoint=False), scale))


class Smile:
    """One drawing: chooses pens and parts, then draws them in the order people do."""

    def __init__(self, rng: np.random.Generator, size: int):
        self.rng = rng
        paper = pick(rng, {"white": 5, "offwhite": 3, "cream": 2, "gray": 1, "recycled": 1, "yellow": 0.8,
                           "blue": 0.6, "pink": 0.5})
        self.canvas = Canvas(size, rng, PAPERS[paper])
        self.face = Face(rng)
        kind = pick(rng, {"pencil": 3, "ballpoint": 2.5, "felt": 2.5, "marker": 1.5, "crayon": 1})
        ink = "graphite" if kind == "pencil" else pick(rng, {"black": 4, "blue": 2.5, "navy": 1, "red": 0.7,
                                                             "green": 0.7, "purple": 0.6, "brown": 0.6,
                                                             "teal": 0.4, "magenta": 0.4, "orange": 0.3})
        self.pen = make_pen(kind, INKS[ink], rng)
        self.kind = kind
        # Some people switch colour for the mouth or the hair; most keep one pen.
        self.accent = self.pen if rng.random() < 0.65 else make_pen(
            "felt" if kind != "pencil" else "crayon", INKS[pick(rng, {"red": 3, "magenta": 1, "orange": 1,
                                                                      "purple": 1, "blue": 1})], rng)

    def fine_pen(self) -> Pen:
        """The main pen, a little thinner for small details (marker users still get fat details)."""
        p = self.pen
        return Pen(p.kind, p.color, p.width * (0.8 if p.kind != "marker" else 0.7), p.opacity, p.wobble * 0.5,
                   p.jitter, p.pressure, p.grain)

    def draw(self) -> Image.Image:
        rng, f = self.rng, self.face
        if rng.random() < 0.14:
            self.ruled_paper()
        if rng.random() < 0.3:
            self.fill_face()
        self.outline()
        if rng.random() < 0.22:
            self.ears()
        if rng.random() < 0.4:
            self.hair()
        eye_y = rng.uniform(-0.42, -0.12) * f.ay
        self.eyes(eye_y)
        if rng.random() < 0.25:
            self.eyebrows(eye_y)
        if rng.random() < 0.4:
            self.nose(eye_y)
        self.mouth(rng.uniform(0.22, 0.48) * f.ay)
        if rng.random() < 0.28:
            self.cheeks(eye_y)
        if rng.random() < 0.12:
            self.freckles(eye_y)
        return self.canvas.render()

    # -- face and head ------------------------------------------------------------------------------------

    def ruled_paper(self) -> None:
        rng = self.rng
        printed = Pen("print", (120, 160, 215), 0.0035, rng.uniform(0.35, 0.6), 0.0, 0.0, 0.0)
        step = rng.uniform(0.07, 0.11)
        offset = rng.uniform(0, step)
        grid = rng.random() < 0.4
        for y in np.arange(offset, 1, step):
            self.canvas.stroke(printed, [[-0.02, y], [1.02, y]])
            if grid:
                self.canvas.stroke(printed, [[y, -0.02], [y, 1.02]])

    def outline(self) -> None:
        """One continuous loop (most people), a loop gone over twice, or a few overlapping arcs."""
        rng, f = self.rng, self.face
        style = pick(rng, {"once": 6, "twice": 1.5, "arcs": 2})
        start, direction = rng.uniform(0, TAU), (1 if rng.random() < 0.7 else -1)
        if style == "arcs":
            n = int(rng.integers(2, 5))
            cuts = start + np.sort(rng.uniform(0, TAU, n - 1))
            bounds = np.concatenate([[start], cuts, [start + TAU]])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                theta = np.linspace(a - rng.uniform(0.05, 0.25), b + rng.uniform(0.0, 0.2), 60)
                scale = 1 + rng.uniform(-0.03, 0.03) + np.linspace(0, rng.uniform(-0.03, 0.03), 60)
                self.canvas.stroke(self.pen, f.map(f.boundary(theta) * scale[:, None]))
            return
        for i in range(2 if style == "twice" else 1):
            t = np.linspace(0, 1, 160)
            theta = start + i * rng.uniform(0.5, 2) + (TAU + rng.uniform(-0.12, 0.45)) * t * direction
            drift = rng.uniform(-0.07, 0.07) * (1 if i == 0 else 0.5)
            self.canvas.stroke(self.pen, f.map(f.boundary(theta) * (1 + drift * t)[:, None]))

    def fill_face(self) -> None:
        rng, f = self.rng, self.face
        colour = FILLS[pick(rng, {"yellow": 6, "orange": 1, "skin": 1.5, "pink": 1, "lightblue": 0.7,
                                  "lime": 0.7, "violet": 0.5})]
        pen = make_pen(pick(rng, {"crayon": 2, "marker": 2, "felt": 1}), colour, rng, scale=1.3)
        dense = rng.uniform(0.6, 1.0) if pen.kind == "marker" else rng.uniform(0.8, 1.7)
        self.hatch(pen, f.outline_polygon(rng.uniform(0.95, 1.02)), grow=rng.uniform(0.0, 0.015),
                   spacing=pen.width * dense)

    def hatch(self, pen: Pen, polygon: np.ndarray, grow: float, spacing: float) -> None:
        """Colour a region the way people do: a back-and-forth scribble, clipped (loosely) to the shape."""
        rng = self.rng
        lo, hi = polygon.min(0), polygon.max(0)
        center, half = (lo + hi) / 2, (hi - lo).max() / 2 + 0.02
        a = rng.uniform(0, math.pi)
        d, n = np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])
        pts = []
        for k, off in enumerate(np.arange(-half, half, spacing)):
            ends = [center + n * off - d * half * rng.uniform(0.9, 1.1), center + n * off + d * half]
            pts.extend(ends if k % 2 == 0 else ends[::-1])
        self.canvas.new_layer(pen)  # its own layer, so the clip below touches nothing else
        self.canvas.stroke(pen, np.asarray(pts))
        self.canvas.clip_last(polygon, grow=grow)

    def ears(self) -> None:
        rng, f = self.rng, self.face
        size, y = rng.uniform(0.14, 0.22), rng.uniform(-0.1, 0.1)
        for side in (-1, 1):
            x = side * f.r(np.array([0.0 if side > 0 else math.pi]))[0] * 0.97
            a = np.linspace(-1.7, 1.7, 30) if side > 0 else np.linspace(math.pi + 1.7, math.pi - 1.7, 30)
            pts = np.stack([x + size * 0.8 * np.cos(a), y + size * np.sin(a)], 1)
            self.canvas.stroke(self.pen, f.map(pts))
            if rng.random() < 0.5:
                inner = np.stack([x + size * 0.4 * np.cos(a[5:-5]), y + size * 0.5 * np.sin(a[5:-5])], 1)
                self.canvas.stroke(self.fine_pen(), f.map(inner))

    def hair(self) -> None:
        rng, f = self.rng, self.face
        style = pick(rng, {"spikes": 2, "strands": 2, "curl": 1.5, "curly": 1.5, "fringe": 1.5, "tuft": 1.5})
        pen = self.pen if rng.random() < 0.6 else make_pen(
            pick(rng, {"crayon": 1, "felt": 2, "marker": 1}),
            INKS[pick(rng, {"brown": 3, "black": 2, "orange": 1, "red": 0.5, "purple": 0.4})], rng)
        getattr(self, f"hair_{style}")(pen, f)

    def hair_spikes(self, pen, f) -> None:
        n = int(self.rng.integers(5, 11))
        theta = np.linspace(-math.pi * 0.85, -math.pi * 0.15, 2 * n + 1)
        scale = np.where(np.arange(2 * n + 1) % 2 == 1, self.rng.uniform(1.18, 1.4, 2 * n + 1), 0.99)
        self.canvas.stroke(pen, f.map(f.boundary(theta) * scale[:, None]))

    def hair_strands(self, pen, f) -> None:
        rng = self.rng
        for th in np.linspace(-math.pi * 0.75, -math.pi * 0.25, int(rng.integers(3, 8))) + rng.normal(0, 0.05):
            base = f.boundary(th)
            out = base / np.linalg.norm(base)
            side = np.array([-out[1], out[0]]) * rng.uniform(-0.15, 0.15)
            length = rng.uniform(0.18, 0.4)
            t = np.linspace(0, 1, 12)[:, None]
            pts = base + out * length * t + side * t ** 2
            self.canvas.stroke(pen, f.map(pts))

    def hair_curl(self, pen, f) -> None:
        rng = self.rng
        top = f.boundary(-math.pi / 2 + rng.normal(0, 0.15))
        t = np.linspace(0, 1, 60)
        turns = rng.uniform(1.2, 2.2)
        r = rng.uniform(0.08, 0.14) * (1 - 0.75 * t)
        ang = math.pi / 2 + turns * TAU * t * (1 if rng.random() < 0.5 else -1)
        pts = top + np.stack([r * np.cos(ang), -r * 1.0 - r * np.sin(ang)], 1) - [0, 0.02]
        self.canvas.stroke(pen, f.map(np.concatenate([[top], pts])))

    def hair_curly(self, pen, f) -> None:
        rng = self.rng
        t = np.linspace(0, 1, 220)
        loops = rng.integers(6, 12)
        theta = -math.pi * 0.88 + math.pi * 0.76 * t
        base = f.boundary(theta, 1.06)
        loop = rng.uniform(0.06, 0.1)
        phi = TAU * loops * t
        pts = base + loop * np.stack([np.cos(phi), np.sin(phi) - 0.6], 1)
        self.canvas.stroke(pen, f.map(pts))

    def hair_fringe(self, pen, f) -> None:
        rng = self.rng
        lean = rng.uniform(-0.25, 0.25)
        for th in np.linspace(-math.pi * 0.8, -math.pi * 0.2, int(rng.integers(6, 13))):
            start = f.boundary(th, 0.99)
            end = start * rng.uniform(0.55, 0.75) + [lean * 0.2, 0]
            self.canvas.stroke(pen, f.map(np.stack([start, (start + end) / 2 + [lean * 0.05, 0], end])))

    def hair_tuft(self, pen, f) -> None:
        rng = self.rng
        top = f.boundary(-math.pi / 2 + rng.normal(0, 0.1))
        for k in range(int(rng.integers(2, 5))):
            a = -math.pi / 2 + (k - 1.5) * rng.uniform(0.25, 0.45)
            tip = top + rng.uniform(0.15, 0.3) * np.array([math.cos(a), math.sin(a)])
            bend = (top + tip) / 2 + rng.normal(0, 0.03, 2)
            self.canvas.stroke(pen, f.map(np.stack([top, bend, tip])))

    # -- eyes, nose, mouth, cheeks --------------------------------------------------------------------------

    def dot(self, pen: Pen, c, radius: float, aspect: float = 1.0) -> None:
        self.canvas.blob(pen, self.face.map(c), radius * self.face.radius, aspect, self.face.tilt)

    def loop(self, pen: Pen, c, rx: float, ry: float | None = None) -> None:
        """A hand-drawn small circle (closing with a little overshoot)."""
        a0 = self.rng.uniform(0, TAU)
        self.canvas.stroke(pen, self.face.map(arc(c[0], c[1], rx, ry or rx, a0, a0 + TAU + self.rng.uniform(0, 0.5))))

    def eyes(self, y: float) -> None:
        rng, f = self.rng, self.face
        style = pick(rng, {"dot": 4, "oval": 2.2, "open": 2, "happy": 1.5, "closed": 1, "wink": 1.2,
                           "glasses": 0.8, "lashes": 0.7})
        gap, size = rng.uniform(0.27, 0.45) * f.ax, rng.uniform(0.065, 0.12)
        centers = [np.array([s * gap, y]) + rng.normal(0, 0.015, 2) for s in (-1, 1)]
        look = rng.normal(0, 0.35, 2).clip(-0.5, 0.5) * size
        pen = self.fine_pen()
        if style == "glasses":
            self.glasses(centers, gap, size, look)
            return
        styles = [style, style]
        if style == "wink":
            styles = [pick(rng, {"dot": 2, "oval": 1, "open": 1}), pick(rng, {"happy": 1, "closed": 1, "chevron": 1})]
            if rng.random() < 0.5:
                styles.reverse()
        for side, (c, s) in enumerate(zip(centers, styles, strict=True)):
            self.eye(pen, c, s, size, look, side)

    def eye(self, pen: Pen, c, style: str, size: float, look, side: int) -> None:
        rng = self.rng
        if style == "dot":
            self.dot(self.pen, c, size * 0.75)
        elif style == "oval":
            self.dot(self.pen, c, size * 0.55, aspect=rng.uniform(1.5, 2.1))
        elif style in ("open", "lashes"):
            r = size * rng.uniform(1.2, 1.7)
            self.loop(pen, c, r, r * rng.uniform(1.0, 1.3))
            self.dot(self.pen, c + look, size * 0.5)
            if style == "lashes":
                for a in np.linspace(-2.4, -0.7, 3):
                    d = np.array([math.cos(a), math.sin(a)])
                    self.canvas.stroke(pen, self.face.map(np.stack([c + d * r * 1.2, c + d * r * 1.9])))
        elif style == "happy":
            self.canvas.stroke(pen, self.face.map(arc(c[0], c[1] + size * 0.6, size * 1.5, size * 1.3,
                                                      math.pi + 0.25, TAU - 0.25, 24)))
        elif style == "closed":
            self.canvas.stroke(pen, self.face.map(arc(c[0], c[1] - size * 0.6, size * 1.5, size * 1.1, 0.3,
                                                      math.pi - 0.3, 24)))
        else:  # chevron, a winking > or <
            s = 1 if side == 0 else -1
            pts = np.array([[-s, -0.9], [s, 0.0], [-s, 0.9]]) * size * 1.3 + c
            self.canvas.stroke(pen, self.face.map(pts))

    def glasses(self, centers, gap: float, size: float, look) -> None:
        rng, f = self.rng, self.face
        r = min(gap * rng.uniform(0.55, 0.8), 0.26)
        square = rng.random() < 0.35
        for c in centers:
            if square:
                k = np.linspace(0, TAU, 9)[:-1] + math.pi / 4
                box = np.stack([np.sign(np.cos(k)) * r * 1.1, np.sign(np.sin(k)) * r * 0.85], 1) + c
                self.canvas.stroke(self.pen, f.map(np.concatenate([box, box[:2]])))
            else:
                self.loop(self.pen, c, r, r * rng.uniform(0.85, 1.05))
            self.dot(self.pen, c + look, size * 0.55)
        bridge = arc((centers[0][0] + centers[1][0]) / 2, centers[0][1], gap - r, r * 0.4, math.pi + 0.3,
                     TAU - 0.3, 12)
        self.canvas.stroke(self.pen, f.map(bridge))
        if rng.random() < 0.6:
            for side, c in zip((-1, 1), centers, strict=True):
                edge = f.boundary(math.pi if side < 0 else 0.0)[0] * 0.98
                self.canvas.stroke(self.pen, f.map(np.array([[c[0] + side * r, c[1]], [edge, c[1] - 0.03]])))

    def eyebrows(self, y: float) -> None:
        rng, f = self.rng, self.face
        gap = rng.uniform(0.27, 0.42) * f.ax
        lift, slant = rng.uniform(0.16, 0.26), rng.normal(0, 0.05)
        for s in (-1, 1):
            c = np.array([s * gap, y - lift])
            a = arc(c[0], c[1] + 0.08, 0.14, 0.08, math.pi + 0.5, TAU - 0.5, 16)
            a[:, 1] += s * slant * (a[:, 0] - c[0]) / 0.14
            self.canvas.stroke(self.fine_pen(), f.map(a))

    def nose(self, eye_y: float) -> None:
        rng = self.rng
        c = np.array([rng.normal(0, 0.03), eye_y + rng.uniform(0.2, 0.3)])
        style = pick(rng, {"dot": 2, "hook": 2, "c": 1.5, "u": 1.5, "round": 0.8})
        pen = self.fine_pen()
        if style == "dot":
            self.dot(self.pen, c, rng.uniform(0.03, 0.05))
        elif style == "hook":
            s = 1 if rng.random() < 0.5 else -1
            pts = np.array([[0, -0.1], [0.02 * s, 0.02], [0.07 * s, 0.05]]) + c
            self.canvas.stroke(pen, self.face.map(pts))
        elif style == "c":
            self.canvas.stroke(pen, self.face.map(arc(c[0], c[1], 0.05, 0.06, 1.3, TAU - 1.3, 16)))
        elif style == "u":
            self.canvas.stroke(pen, self.face.map(arc(c[0], c[1] - 0.03, 0.06, 0.05, 0.2, math.pi - 0.2, 16)))
        else:
            red = make_pen("marker", INKS["red"], rng) if rng.random() < 0.5 else pen
            self.loop(red, c, 0.06)

    def mouth(self, y: float) -> None:
        rng, f = self.rng, self.face
        style = pick(rng, {"smile": 5, "big_smile": 2, "grin": 2.2, "open": 1.6, "tongue": 1.3, "neutral": 0.7,
                           "frown": 0.5, "smirk": 1.0, "o": 0.4, "cat": 0.5})
        w = rng.uniform(0.3, 0.62) * f.ax
        x = rng.normal(0, 0.03)
        pen = self.accent
        if style in ("smile", "big_smile", "tongue"):
            depth = rng.uniform(0.12, 0.3) if style != "big_smile" else rng.uniform(0.3, 0.45)
            a0 = rng.uniform(0.05, 0.45) if style != "big_smile" else rng.uniform(-0.25, 0.1)
            top = y - depth * 0.6
            self.canvas.stroke(pen, f.map(arc(x, top, w, depth, a0, math.pi - a0 + rng.normal(0, 0.08))))
            if rng.random() < 0.3:
                self.dimples(pen, x, top, w, depth, a0)
            if style == "tongue":
                self.tongue(x + rng.normal(0, 0.05), top + depth * 0.97, rng.uniform(0.09, 0.14))
        elif style in ("grin", "open"):
            self.open_mouth(pen, x, y, w, style)
        elif style == "neutral":
            tilt = rng.normal(0, 0.04)
            self.canvas.stroke(pen, f.map(np.array([[x - w * 0.6, y - tilt], [x + w * 0.6, y + tilt]])))
        elif style == "frown":
            self.canvas.stroke(pen, f.map(arc(x, y + 0.12, w * 0.55, 0.12, math.pi + 0.5, TAU - 0.5, 24)))
        elif style == "smirk":
            s = 1 if rng.random() < 0.5 else -1
            pts = arc(x, y - 0.1, w * 0.8, 0.15, 0.4, 1.9, 24)
            self.canvas.stroke(pen, f.map(pts * [s, 1] + [x * (1 - s), 0]))
        elif style == "o":
            self.loop(pen, np.array([x, y]), rng.uniform(0.07, 0.12), rng.uniform(0.08, 0.15))
        else:  # cat mouth
            for s in (-1, 1):
                self.canvas.stroke(pen, f.map(arc(x + s * 0.09, y - 0.04, 0.09, 0.08, 0.1, math.pi - 0.1, 16)))

    def dimples(self, pen: Pen, x, top, w, depth, a0) -> None:
        for a in (a0, math.pi - a0):
            end = np.array([x + w * math.cos(a), top + depth * math.sin(a)])
            d = np.array([math.cos(a + 0.3), math.sin(a + 0.3)]) * 0.06
            self.canvas.stroke(self.fine_pen(), self.face.map(np.stack([end - d, end + d])))

    def open_mouth(self, pen: Pen, x, y, w, style: str) -> None:
        rng, f = self.rng, self.face
        depth = rng.uniform(0.18, 0.35)
        curve = rng.uniform(-0.06, 0.04)
        top = y - depth * 0.4
        lower = arc(x, top, w, depth, 0.0, math.pi, 40)
        upper = np.stack([np.linspace(x - w, x + w, 12), top + curve * np.sin(np.linspace(0, math.pi, 12))], 1)
        shape = np.concatenate([upper, lower])
        self.canvas.stroke(pen, f.map(np.concatenate([shape, shape[:3]])))
        if style == "grin":
            if rng.random() < 0.6:  # teeth
                mid = top + depth * rng.uniform(0.3, 0.45)
                half = w * math.sqrt(max(0.0, 1 - ((mid - top) / depth) ** 2))
                self.canvas.stroke(self.fine_pen(), f.map(np.array([[x - half, mid], [x + half, mid]])))
                for tx in np.linspace(x - w * 0.6, x + w * 0.6, int(rng.integers(2, 6))):
                    self.canvas.stroke(self.fine_pen(), f.map(np.array([[tx, top + curve * 0.5], [tx, mid]])))
        elif rng.random() < 0.5:
            ink = make_pen("marker", pen.color, rng)
            self.canvas.new_layer(ink)
            self.canvas.polygon(ink, f.map(shape))
        else:
            self.tongue(x + rng.normal(0, 0.04), top + depth * 0.95, w * rng.uniform(0.35, 0.5), inside=True)

    def tongue(self, x: float, y: float, r: float, inside: bool = False) -> None:
        rng, f = self.rng, self.face
        a0, a1 = (math.pi + 0.4, TAU - 0.4) if inside else (0.0, math.pi)
        shape = arc(x, y, r, r * (0.7 if inside else 1.2), a0, a1, 24)
        if rng.random() < 0.6:
            pink = make_pen(pick(rng, {"crayon": 1, "felt": 1}), FILLS[pick(rng, {"pink": 2, "red": 1})], rng)
            self.hatch(pink, f.map(shape), grow=0.0, spacing=pink.width * 1.2)
        self.canvas.stroke(self.accent, f.map(shape))
        if rng.random() < 0.5:
            mid = np.array([[x, y + (0 if inside else 0.02)], [x, y + r * (-0.4 if inside else 0.6)]])
            self.canvas.stroke(self.fine_pen(), f.map(mid))

    def cheeks(self, eye_y: float) -> None:
        rng, f = self.rng, self.face
        style = pick(rng, {"blush": 3, "circle": 1.5, "lines": 1.2, "spiral": 0.6})
        gap, y, r = rng.uniform(0.45, 0.62) * f.ax, eye_y + rng.uniform(0.25, 0.38), rng.uniform(0.09, 0.15)
        colour = FILLS[pick(rng, {"pink": 3, "red": 1.5, "orange": 0.6})]
        pen = make_pen(pick(rng, {"crayon": 2, "felt": 1, "marker": 1}), colour, rng)
        for s in (-1, 1):
            c = np.array([s * gap, y])
            if style == "blush":
                self.hatch(pen, f.map(arc(c[0], c[1], r, r * 0.7, 0, TAU, 24)), grow=0.004,
                           spacing=pen.width * rng.uniform(0.8, 1.4))
            elif style == "circle":
                self.loop(self.fine_pen() if rng.random() < 0.5 else pen, c, r, r * 0.8)
            elif style == "lines":
                for k in range(3):
                    base = c + [(k - 1) * r * 0.6, 0]
                    self.canvas.stroke(pen, f.map(np.stack([base + [r * 0.25, -r * 0.4], base - [r * 0.25, -r * 0.4]])))
            else:
                t = np.linspace(0, 1, 40)
                rr = r * (1 - 0.85 * t)
                ang = TAU * 1.6 * t * s
                spiral = np.stack([c[0] + rr * np.cos(ang), c[1] + rr * np.sin(ang)], 1)
                self.canvas.stroke(self.fine_pen(), f.map(spiral))

    def freckles(self, eye_y: float) -> None:
        rng = self.rng
        pen = self.pen if rng.random() < 0.5 else make_pen("felt", INKS["brown"], rng)
        for s in (-1, 1):
            c = np.array([s * rng.uniform(0.35, 0.5) * self.face.ax, eye_y + rng.uniform(0.22, 0.32)])
            for _ in range(int(rng.integers(3, 7))):
                self.dot(pen, c + rng.normal(0, 0.06, 2), rng.uniform(0.012, 0.022))


def draw_smile(rng: np.random.Generator, size: int) -> Image.Image:
    """One hand-drawn-looking smiling face, size x size RGB."""
    return Smile(rng, size).draw()

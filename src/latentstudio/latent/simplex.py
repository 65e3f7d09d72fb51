"""Simplex gradient noise, vectorised over thousands of points at once (numpy).

The school's spacewalk moved every latent dimension along its own smooth noise curve. We evaluate the
noise for all dimensions of all frames of a batch in one call: dimension d reads the noise field at its own
random, far-apart coordinates (a_d, b_d), and time moves along the remaining axes:

- open walk:  3-D noise at (speed * frame, a_d, b_d)
- looping:    4-D noise at (R cos θ, R sin θ, a_d, b_d), θ = 2π frame / frames, R = speed * frames / 2π,
              so the walk moves at the same speed and comes back exactly to where it started.

The kernel radius² is 0.5, the distance from a lattice vertex to the far side of every simplex around it
in 2, 3 and 4 dimensions, so each vertex's contribution fades to zero before it stops being counted: the
noise is continuous (and smooth) everywhere. Values are scaled to a standard deviation of about 1, so a
walk's `radius` is in the same units as a latent's σ.

`backend="opensimplex"` evaluates Kurt Spencer's OpenSimplex noise through the `opensimplex` package
instead (the `video` extra); it loops in Python unless numba is installed, so it is much slower.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError, require

# Kernel radius² (see above) and the factor that brings the noise to σ ≈ 1. The factors were measured on a
# 100,000 random points for each of ten seeds (tests/latent/test_simplex.py checks them).
RADIUS2 = 0.5
SCALE = {2: 183.9, 3: 277.2, 4: 428.6}
OPENSIMPLEX_SCALE = {3: 3.21, 4: 4.03}
BACKENDS = ("simplex", "opensimplex")


class SimplexNoise:
    """N-dimensional simplex noise with a seeded permutation and random unit gradients."""

    def __init__(self, dims: int, seed: int = 0):
        if dims not in SCALE:
            raise ValueError(f"SimplexNoise: dims must be 2, 3 or 4, got {dims}")
        rng = np.random.RandomState(seed)
        self.dims = dims
        self.perm = rng.permutation(256).astype(np.int64)
        grads = rng.standard_normal((256, dims))
        self.grads = grads / np.linalg.norm(grads, axis=1, keepdims=True)
        self.skew = (math.sqrt(dims + 1) - 1) / dims
        self.unskew = (1 - 1 / math.sqrt(dims + 1)) / dims

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Noise values [P] (σ ≈ 1) at points [P, dims]."""
        points = np.asarray(points, dtype=np.float64)
        n = self.dims
        cell = np.floor(points + points.sum(1, keepdims=True) * self.skew)
        x0 = points - (cell - cell.sum(1, keepdims=True) * self.unskew)
        order = np.argsort(-x0, axis=1, kind="stable")  # walk the simplex along the largest coordinates first
        cell = cell.astype(np.int64)
        offset = np.zeros_like(cell)
        rows = np.arange(len(points))
        total = np.zeros(len(points))
        for k in range(n + 1):
            if k:
                offset[rows, order[:, k - 1]] += 1
            xk = x0 - offset + k * self.unskew
            h = np.zeros(len(points), dtype=np.int64)
            for d in range(n):
                h = self.perm[(cell[:, d] + offset[:, d] + h) & 255]
            falloff = np.maximum(RADIUS2 - np.einsum("pd,pd->p", xk, xk), 0.0)
            total += falloff**4 * np.einsum("pd,pd->p", self.grads[h], xk)
        return total * SCALE[n]


class NoiseField:
    """Smooth per-dimension noise curves: values [n_frames, size] for any frame indices.

    `loop_frames` (when given) makes every curve periodic with that many frames.
    """

    def __init__(self, size: int, speed: float, seed: int = 0, loop_frames: int | None = None,
                 backend: str = "simplex"):
        if backend not in BACKENDS:
            raise UserError(f"noise {backend!r}: use simplex or opensimplex")
        if loop_frames is not None and loop_frames <= 0:
            raise UserError(f"frames {loop_frames}: a looping walk needs at least one frame")
        rng = np.random.RandomState(seed)
        self.size, self.speed, self.loop_frames, self.backend = size, float(speed), loop_frames, backend
        self.coords = rng.uniform(0, 256, size=(size, 2))  # far apart: the dimensions move independently
        dims = 4 if loop_frames else 3
        self.seed = int(rng.randint(0, 2**31 - 1))
        self.noise = SimplexNoise(dims, self.seed) if backend == "simplex" else None

    def time_coords(self, frames: np.ndarray) -> np.ndarray:
        """[n, 1 or 2] positions along the time axes for frame indices."""
        frames = np.asarray(frames, dtype=np.float64)
        if not self.loop_frames:
            return (frames * self.speed)[:, None]
        theta = 2 * np.pi * np.mod(frames, self.loop_frames) / self.loop_frames
        radius = self.speed * self.loop_frames / (2 * np.pi)
        return np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)

    def __call__(self, frames) -> np.ndarray:
        t = self.time_coords(np.atleast_1d(frames))
        if self.backend == "opensimplex":
            return self._opensimplex(t)
        n = len(t)
        points = np.concatenate([np.repeat(t, self.size, axis=0), np.tile(self.coords, (n, 1))], axis=1)
        return self.noise(points).reshape(n, self.size)

    def _opensimplex(self, t: np.ndarray) -> np.ndarray:
        opensimplex = require("opensimplex", "video", "the opensimplex noise backend")
        gen = opensimplex.OpenSimplex(self.seed)
        a, b = self.coords[:, 0], self.coords[:, 1]
        out = np.empty((len(t), self.size))
        for i, row in enumerate(t):
            if row.shape[0] == 1:  # noise3(time, a_d, b_d)
                vals = [gen.noise3(row[0], x, y) for x, y in zip(a, b, strict=True)]
            else:
                vals = [gen.noise4(row[0], row[1], x, y) for x, y in zip(a, b, strict=True)]
            out[i] = vals
        return out * OPENSIMPLEX_SCALE[t.shape[1] + 2]

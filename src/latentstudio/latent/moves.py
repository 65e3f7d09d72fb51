"""Moves: how a walk gets from latent to latent. Each move is a segment of exactly `frames` frames.

A segment covers the half-open range [start, end): frame 0 is its start and `end()` is the latent that
would come next (the next key, or the start again for loops), so segments join without repeating a frame
and loops repeat seamlessly. Segments are sampled lazily, `latents(frame_indices)` -> [n, *shape], so a
walk of any length costs memory for one batch only.

Build them with the functions at the bottom (`interpolation`, `noise_loop`, `spacewalk`, `circle`,
`hold`); they take latents of a `LatentSpace` (see `latent.space`) and a seed for their randomness.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ..errors import UserError
from .simplex import NoiseField, ReadAhead
from .space import LatentSpace

EASINGS = ("linear", "ease-in", "ease-out", "ease-in-out", "smoothstep")
NOISE_LOOP_SIGMA = 0.3  # σ of a noise loop's step between stops, everywhere (library, CLI, timeline files)
MODES = ("linear", "slerp")


def ease(name: str, t: torch.Tensor) -> torch.Tensor:
    """Easing curves on [0, 1] with ease(0) = 0 and ease(1) = 1."""
    if name == "linear":
        return t
    if name == "ease-in":
        return t * t
    if name == "ease-out":
        return 1 - (1 - t) ** 2
    if name == "ease-in-out":
        return (1 - torch.cos(math.pi * t)) / 2
    if name == "smoothstep":
        return t * t * (3 - 2 * t)
    raise UserError(f"easing {name!r}: use one of {', '.join(EASINGS)}")


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * like.dim()))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a·(1 - t) + b·t for every t ([n] -> [n, *a.shape]); exact at t = 0 and t = 1."""
    t = _expand(t, a)
    return a * (1 - t) + b * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, origin: torch.Tensor | None = None) -> torch.Tensor:
    """Spherical interpolation of a - origin and b - origin, row by row along the last axis (each layer of a
    ws separately); falls back to lerp where the two directions (nearly) coincide. Exact at t = 0 and 1."""
    origin = torch.zeros_like(a) if origin is None else origin
    a0, b0 = a - origin, b - origin
    cos = (torch.nn.functional.normalize(a0, dim=-1) * torch.nn.functional.normalize(b0, dim=-1)).sum(-1)
    omega = torch.arccos(cos.clamp(-1, 1)).unsqueeze(-1)  # [*rows, 1]
    sin = torch.sin(omega)
    tt = _expand(t, a)
    flat = sin < 1e-6
    safe = torch.where(flat, torch.ones_like(sin), sin)
    wa = torch.where(flat, 1 - tt, torch.sin((1 - tt) * omega) / safe)
    wb = torch.where(flat, tt, torch.sin(tt * omega) / safe)
    out = origin + wa * a0 + wb * b0
    out = torch.where(tt == 0, a.expand_as(out), out)
    return torch.where(tt == 1, b.expand_as(out), out)


@dataclasses.dataclass(frozen=True, eq=False)
class Segment:
    """Base of all moves: `frames` frames, `latents(idx)` for idx in [0, frames), `end()` after the last."""

    frames: int
    info: dict

    def latents(self, idx: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def end(self) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"frames": self.frames, **self.info}


@dataclasses.dataclass(frozen=True, eq=False)
class Interpolation(Segment):
    start: torch.Tensor
    stop: torch.Tensor
    mode: str = "linear"
    easing: str = "linear"
    origin: torch.Tensor | None = None

    def latents(self, idx):
        t = ease(self.easing, torch.as_tensor(np.asarray(idx), dtype=torch.float64) / self.frames).float()
        if self.mode == "slerp":
            return slerp(self.start, self.stop, t, self.origin)
        return lerp(self.start, self.stop, t)

    def end(self):
        return self.stop


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseLoop(Segment):
    """Linear interpolation through `stops` [K, *shape] (stops[0] = centre) and back to the centre."""

    stops: torch.Tensor
    frames_per_stop: int = 30
    easing: str = "linear"

    def latents(self, idx):
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long) % self.frames  # a loop: frame `frames` is frame 0
        k = len(self.stops)
        seg = idx // self.frames_per_stop
        t = ease(self.easing, (idx % self.frames_per_stop).double() / self.frames_per_stop).float()
        a, b = self.stops[seg], self.stops[(seg + 1) % k]
        t = _expand(t, self.stops[0])
        return a * (1 - t) + b * t

    def end(self):
        return self.stops[0]


@dataclasses.dataclass(frozen=True, eq=False)
class Spacewalk(Segment):
    """centre + radius · noise(t), one smooth noise curve (σ 1) per dimension; anchored walks use
    (noise(t) - noise(0)) / √2 instead, which starts on the centre and still has σ 1 once the walk has
    moved past the noise's reach from its start (two far-apart noise values are independent)."""

    centre: torch.Tensor
    field: NoiseField | ReadAhead
    radius: float
    noise_shape: tuple
    start: np.ndarray | None = None  # noise(0) [1, size] for anchored walks

    def _noise(self, idx) -> torch.Tensor:
        values = self.field(np.asarray(idx))
        if self.start is not None:
            values = (values - self.start) / math.sqrt(2)
        noise = torch.from_numpy(values.astype(np.float32, copy=False)).reshape(-1, *self.noise_shape)
        return noise.expand(-1, *self.centre.shape)

    def latents(self, idx):
        return self.centre + self.radius * self._noise(idx)

    def end(self):
        return self.latents(np.array([self.frames]))[0]


@dataclasses.dataclass(frozen=True, eq=False)
class Circle(Segment):
    """origin + cos θ · x + sin θ · y for θ over one full turn: seamless, and for Gaussian x, y in Z every frame
    is again a unit-variance Gaussian latent."""

    origin: torch.Tensor
    x: torch.Tensor
    y: torch.Tensor

    def latents(self, idx):
        theta = 2 * math.pi * torch.as_tensor(np.mod(np.asarray(idx), self.frames), dtype=torch.float64) / self.frames
        c, s = _expand(torch.cos(theta).float(), self.x), _expand(torch.sin(theta).float(), self.x)
        return self.origin + c * self.x + s * self.y

    def end(self):
        return self.latents(np.array([0]))[0]


@dataclasses.dataclass(frozen=True, eq=False)
class Hold(Segment):
    latent: torch.Tensor

    def latents(self, idx):
        return self.latent.expand(len(np.atleast_1d(idx)), *self.latent.shape).clone()

    def end(self):
        return self.latent


def _check_frames(frames: int, what: str = "frames") -> int:
    if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0:
        raise UserError(f"{what} {frames!r}: must be a whole number greater than 0")
    return frames


def interpolation(a: torch.Tensor, b: torch.Tensor, frames: int = 150, mode: str = "linear",
                  easing: str = "linear", origin: torch.Tensor | None = None) -> Interpolation:
    """From latent a (frame 0) towards b (the frame after the last): frame i = mix(a, b, ease(i / frames))."""
    if mode not in MODES:
        raise UserError(f"mode {mode!r}: use linear or slerp")
    ease(easing, torch.zeros(1))
    return Interpolation(frames=_check_frames(frames), info={"move": "interpolate", "mode": mode, "easing": easing},
                         start=a, stop=b, mode=mode, easing=easing, origin=origin)


def noise_loop(centre: torch.Tensor, space: LatentSpace, stops: int = 7, frames: int = 30,
               sigma: float = NOISE_LOOP_SIGMA, seed: int = 0, easing: str = "linear") -> NoiseLoop:
    """The exhibition's loop: stop 0 is the centre, stop k = stop k-1 + σ·ε_k (ε Gaussian, in W one vector for
    all layers), `frames` frames of interpolation from each stop to the next and from the last back to the
    centre: stops × frames frames in all."""
    _check_frames(stops, "stops")
    if sigma < 0:
        raise UserError(f"sigma {sigma}: must be 0 or more")
    ease(easing, torch.zeros(1))
    eps = space.noise(tuple(centre.shape), stops - 1, np.random.RandomState(seed)) * sigma
    all_stops = torch.cat([centre[None], centre[None] + torch.cumsum(eps, dim=0)])
    info = {"move": "noise-loop", "stops": stops, "frames_per_stop": frames, "sigma": sigma, "seed": seed,
            "easing": easing}
    return NoiseLoop(frames=stops * _check_frames(frames), info=info, stops=all_stops, frames_per_stop=frames,
                     easing=easing)


def spacewalk(centre: torch.Tensor, space: LatentSpace, frames: int = 300, radius: float = 0.5,
              speed: float = 0.01, loop: bool = True, seed: int = 0, anchored: bool = True,
              noise: str = "opensimplex") -> Spacewalk:
    """The school's spacewalk: every dimension drifts along its own OpenSimplex noise curve around the centre.

    `radius` is the σ of the offset from the centre, `speed` how far along the noise each frame moves (about
    0.9/speed frames from one extreme to the next). `loop` samples the noise on a circle so the walk closes
    after `frames`. `anchored` starts (and, looping, ends) exactly at the centre; its offset grows to σ
    `radius` within a few swings of the start (a short, slow loop stays closer: it never gets far from its
    start along the noise). `seed` is the OpenSimplex
    seed: the noise is `opensimplex.OpenSimplex(seed).noise3` of the PyPI package, along the paths of
    `latent.simplex.NoiseField`.
    """
    _check_frames(frames)
    if speed <= 0 or radius < 0:
        raise UserError(f"speed {speed} / radius {radius}: speed must be > 0 and radius >= 0")
    shape = space.noise_shape(tuple(centre.shape))
    field = NoiseField(int(np.prod(shape)), speed, seed=seed, loop_frames=frames if loop else None, noise=noise)
    info = {"move": "spacewalk", "radius": radius, "speed": speed, "loop": loop, "seed": seed,
            "anchored": anchored, "noise": noise}
    return Spacewalk(frames=frames, info=info, centre=centre, field=ReadAhead(field, frames), radius=radius,
                     noise_shape=shape, start=field(np.zeros(1)) if anchored else None)


def circle(a: torch.Tensor, b: torch.Tensor | None, space: LatentSpace, G, frames: int = 300,
           seed: int = 0) -> Circle:
    """A full turn through key a (θ = 0) and key b (θ = 90°) around the space's origin:
    latent(θ) = o + cos θ·(a - o) + sin θ·(b - o), o = 0 in Z and w_avg in W. Without b, b is a random latent
    from `seed` (a Gaussian z, mapped in W)."""
    _check_frames(frames)
    origin = space.origin(G)
    if b is None:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32))
        b = space.from_z(G, z)[0]
    info = {"move": "circle", "seed": seed}
    return Circle(frames=frames, info=info, origin=origin, x=a - origin, y=b - origin)


def hold(latent: torch.Tensor, frames: int = 30) -> Hold:
    """The same latent for `frames` frames."""
    return Hold(frames=_check_frames(frames), info={"move": "hold"}, latent=latent)

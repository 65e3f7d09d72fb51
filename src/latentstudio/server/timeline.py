"""Random-access walks for streaming, on top of the walks area's timeline API (latent.timeline, latent.moves).
Streams need frame k at the moment the server clock says, not an iterator from the start, so screens that
join late show the same frame as the others."""

from __future__ import annotations

import numpy as np
import torch

from ..latent.moves import interpolation, noise_loop
from ..latent.timeline import Timeline as WalkTimeline
from .adapters import W_SPACE


class Timeline:
    """A walk in W, cyclic in its frame index: frame(k) == frame(k + frames)."""

    def __init__(self, segments: list, end_frame: bool = False):
        self.walk = WalkTimeline(W_SPACE, segments, end_frame=end_frame)

    @property
    def frames(self) -> int:
        return self.walk.num_frames

    def frame(self, k: int) -> torch.Tensor:
        return self.walk.latents(np.array([int(k) % self.frames]))[0]

    def latents(self, idx) -> torch.Tensor:
        return self.walk.latents(np.asarray(idx) % self.frames)


def morph(a: torch.Tensor, b: torch.Tensor, frames: int):
    return interpolation(a, b, max(1, int(frames)))


def loop(ws: torch.Tensor, stops: int, frames_per_stop: int, strength: float, seed: int):
    return noise_loop(ws, W_SPACE, stops=max(2, stops), frames=max(1, frames_per_stop), sigma=strength, seed=seed)


def build(keys: list[torch.Tensor], mode: str, frames: int, stops: int = 7, strength: float = 0.6,
          seed: int = 0, cyclic: bool = True) -> Timeline:
    """mode 'interpolate': morph key to key (`frames` each; back to the first when cyclic, else ending on the
    last key); 'loop': a noise loop around each key (`frames` per stop); 'ballad': loop, morph, loop, ... with
    `frames` per morph and per whole loop (frames // stops per stop)."""
    nxt = keys[1:] + keys[:1] if cyclic else keys[1:]
    if mode == "interpolate":
        segs = [morph(a, b, frames) for a, b in zip(keys, nxt, strict=False)] or [morph(keys[0], keys[0], frames)]
    elif mode == "loop":
        segs = [loop(k, stops, frames, strength, seed + i) for i, k in enumerate(keys)]
    elif mode == "ballad":
        segs = []
        for i, k in enumerate(keys):
            segs.append(loop(k, stops, max(1, frames // stops), strength, seed + i))
            if i < len(nxt) and len(keys) > 1:
                segs.append(morph(k, nxt[i], frames))
    else:
        raise ValueError(f"unknown timeline mode {mode!r}")
    return Timeline(segs, end_frame=not cyclic and mode == "interpolate" and len(keys) > 1)

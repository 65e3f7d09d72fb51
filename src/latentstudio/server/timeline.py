"""Random-access timelines of ws for streaming: frame k of a walk made of morphs (key to key) and noise loops
(around one key). Streams need frame k at the time the server clock says, not an iterator from the start, so
screens that join late show the same frame as the others.

TODO(walks): build the segments from latentstudio.latent's timeline/moves API once it lands; the maths of
each frame stays in adapters (lerp, noise_loop_stops).
"""

from __future__ import annotations

import bisect
import dataclasses

import torch

from . import adapters


@dataclasses.dataclass
class Segment:
    stops: torch.Tensor  # [S, num_ws, w_dim]: morph = 2 stops (open), loop = S stops (closed)
    frames_per_step: int
    closed: bool = False

    @property
    def frames(self) -> int:
        steps = self.stops.shape[0] if self.closed else self.stops.shape[0] - 1
        return max(1, steps * self.frames_per_step)

    def frame(self, k: int) -> torch.Tensor:
        step, sub = divmod(k, self.frames_per_step)
        a = self.stops[step % self.stops.shape[0]]
        b = self.stops[(step + 1) % self.stops.shape[0]]
        return adapters.lerp(a, b, sub / self.frames_per_step)


class Timeline:
    def __init__(self, segments: list[Segment]):
        if not segments:
            raise ValueError("a timeline needs at least one segment")
        self.segments = segments
        self.starts = [0]
        for seg in segments:
            self.starts.append(self.starts[-1] + seg.frames)

    @property
    def frames(self) -> int:
        return self.starts[-1]

    def frame(self, k: int) -> torch.Tensor:
        k = int(k) % self.frames
        i = bisect.bisect_right(self.starts, k) - 1
        return self.segments[i].frame(k - self.starts[i])


def morph(a: torch.Tensor, b: torch.Tensor, frames: int) -> Segment:
    return Segment(torch.stack([a, b]), max(1, frames))


def loop(ws: torch.Tensor, stops: int, frames_per_stop: int, strength: float, seed: int) -> Segment:
    return Segment(adapters.noise_loop_stops(ws, max(2, stops), strength, seed), max(1, frames_per_stop), closed=True)


def build(keys: list[torch.Tensor], mode: str, frames: int, stops: int = 7, strength: float = 0.6,
          seed: int = 0, cyclic: bool = True) -> Timeline:
    """mode 'interpolate': morph key to key (`frames` each; back to the first when cyclic);
    'loop': a noise loop around each key (`frames` per stop); 'ballad': loop, morph, loop, morph, ..."""
    segs: list[Segment] = []
    pairs = list(zip(keys, keys[1:] + keys[:1], strict=True)) if cyclic else list(zip(keys, keys[1:], strict=False))
    if mode == "interpolate":
        segs = [morph(a, b, frames) for a, b in pairs] or [morph(keys[0], keys[0], frames)]
    elif mode == "loop":
        segs = [loop(k, stops, frames, strength, seed + i) for i, k in enumerate(keys)]
    elif mode == "ballad":
        for i, k in enumerate(keys):
            segs.append(loop(k, stops, max(1, frames // stops), strength, seed + i))
            if i < len(pairs) and len(keys) > 1:
                segs.append(morph(pairs[i][0], pairs[i][1], frames))
    else:
        raise ValueError(f"unknown timeline mode {mode!r}")
    return Timeline(segs)

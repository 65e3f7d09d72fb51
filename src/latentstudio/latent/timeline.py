"""A resolved timeline: segments (moves) back to back, sampled in batches of frames.

This is the frame-iterator API the renderer, the CLI and the server share:

    timeline = Timeline(space, [noise_loop(...), interpolation(...), ...])
    timeline.num_frames                                  # exact frame count
    timeline.latents(np.arange(0, 8))                    # latents of frames 0..7 in the timeline's space
    for ws in timeline.iter_ws(G, batch=8):              # ws [B, num_ws, w_dim] on G's device, lazily
        images = G.synthesis(ws, noise_mode="const")

`offset` shifts the timeline cyclically (frame f shows frame (f + offset) mod num_frames), which is how
several screens play one timeline out of phase and still stay in sync. `end_frame` appends the latent
after the last segment (a walk through keys then ends exactly on its last key).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .moves import Segment
from .space import LatentSpace


class Timeline:
    """Segments played one after another in one latent space."""

    def __init__(self, space: LatentSpace, segments: Sequence[Segment], end_frame: bool = False, offset: int = 0,
                 info: dict | None = None):
        if not segments:
            raise ValueError("Timeline needs at least one segment")
        self.space = space
        self.segments = list(segments)
        self.end_frame = bool(end_frame)
        self.starts = np.cumsum([0] + [s.frames for s in self.segments])
        self.offset = int(offset) % self.num_frames
        self.info = dict(info or {})

    @property
    def num_frames(self) -> int:
        return int(self.starts[-1]) + int(self.end_frame)

    def latents(self, idx) -> torch.Tensor:
        """Latents [n, *shape] (CPU, float32) of the given frame indices (0 <= idx < num_frames)."""
        idx = (np.atleast_1d(np.asarray(idx, dtype=np.int64)) + self.offset) % self.num_frames
        seg_of = np.searchsorted(self.starts, idx, side="right") - 1
        s = int(seg_of[0]) if len(seg_of) else -1
        if 0 <= s < len(self.segments) and (seg_of == s).all():  # a batch within one segment: most of a render
            return self.segments[s].latents(idx - self.starts[s]).float().contiguous()
        out = None
        for s in np.unique(seg_of):
            rows = np.nonzero(seg_of == s)[0]
            if s == len(self.segments):  # the end frame
                end = self.segments[-1].end()
                values = end[None].expand(len(rows), *end.shape)
            else:
                values = self.segments[s].latents(idx[rows] - self.starts[s])
            if out is None:
                out = torch.empty(len(idx), *values.shape[1:], dtype=torch.float32)
            out[torch.from_numpy(rows)] = values.float()
        return out

    def ws(self, G, idx) -> torch.Tensor:
        """ws [n, num_ws, w_dim] on G's device for the given frames."""
        return self.space.to_ws(G, self.latents(idx))

    def iter_ws(self, G, batch: int = 8, start: int = 0, stop: int | None = None) -> Iterator[torch.Tensor]:
        """Yield ws batches [<=batch, num_ws, w_dim] for frames start..stop-1 (default: the whole timeline)."""
        stop = self.num_frames if stop is None else min(stop, self.num_frames)
        for i in range(start, stop, batch):
            yield self.ws(G, np.arange(i, min(i + batch, stop)))

    def cuts(self, atol: float = 1e-4) -> list[int]:
        """Frames where a segment does not start where the previous one ended (a jump in the picture)."""
        found = []
        for i in range(1, len(self.segments)):
            prev_end = self.segments[i - 1].end()
            start = self.segments[i].latents(np.zeros(1, dtype=np.int64))[0]
            if not torch.allclose(prev_end, start, atol=atol, rtol=1e-4):
                found.append(int(self.starts[i]))
        return found

    def describe(self) -> dict:
        """The resolved timeline as plain data (written next to every output)."""
        segments = [{"start": int(self.starts[i]), **s.describe()} for i, s in enumerate(self.segments)]
        return {"space": self.space.name, "truncation_psi": self.space.truncation_psi,
                "truncation_cutoff": self.space.truncation_cutoff, "class": self.space.class_idx,
                "num_frames": self.num_frames, "end_frame": self.end_frame, "offset": self.offset,
                **self.info, "segments": segments, "cuts": self.cuts()}

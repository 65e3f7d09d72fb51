"""The Wall's walk: a cycle through the gallery (a noise loop around each drawing's latent, then a morph to the
next), timed by the server clock so every screen that asks at the same moment gets the same frame.

A drawing that joins the gallery is shown within seconds: the walk is rebuilt with an intro that morphs from
wherever screen 0 is now to the newcomer, and the cycle then starts at the newcomer. `?screen=i&of=n` shifts
screen i by i/n of the cycle, so n screens together show the whole walk at once.
"""

from __future__ import annotations

import asyncio
import time

import torch

from . import timeline


class Wall:
    def __init__(self, store, engine, config):
        self.store = store
        self.engine = engine
        self.config = config
        self.version = -1
        self.members: list[str] = []
        # (cycle, intro, t0) replaced as one tuple, so a frame never mixes an old cycle with a new start time
        self.state: tuple[timeline.Timeline, timeline.Timeline | None, float] | None = None
        self.lock = asyncio.Lock()

    @property
    def fps(self) -> int:
        return self.config.wall_fps

    async def refresh(self) -> None:
        """Rebuild the walk if the gallery changed since the last frame (cheap check of a counter)."""
        if self.store.version == self.version and self.state is not None:
            return
        async with self.lock:
            if self.store.version != self.version or self.state is None:
                version = self.store.version
                await self.engine.call(self._rebuild, time.time())
                self.version = version

    def _members(self) -> list[tuple[str, torch.Tensor]]:
        out = []
        for entry in self.store.gallery():
            try:
                ws = self.engine.resolve({"drawing": entry["drawing_id"]})
            except Exception:  # noqa: BLE001 - latents of another model or deleted files are skipped
                continue
            out.append((entry["drawing_id"], ws))
        if not out:
            out = [(f"seed{s}", self.engine.seed_ws(int(s), self.config.truncation)) for s in self.config.wall_seeds]
        return out

    def _rebuild(self, now: float) -> None:
        """Model thread: the new cycle, starting at the newest member if one joined."""
        c = self.config
        members = self._members()
        new = [m for m in members if m[0] not in self.members]
        current = self.frame(now) if self.state is not None else None
        if new and current is not None:
            first = members.index(new[-1])
            members = members[first:] + members[:first]
        segs = []
        for i, (_, ws) in enumerate(members):
            segs.append(timeline.loop(ws, c.wall_loop_stops, c.wall_stop_frames, c.wall_loop_strength, i))
            if len(members) > 1:
                segs.append(timeline.morph(ws, members[(i + 1) % len(members)][1], c.wall_morph_frames))
        cycle = timeline.Timeline(segs)
        intro = timeline.Timeline([timeline.morph(current, members[0][1], c.wall_intro_frames)]) \
            if current is not None and new else None
        t0 = now if new or self.state is None else self.state[2]
        self.members = [m[0] for m in members]
        self.state = (cycle, intro, t0)

    def frame_index(self, now: float, screen: int = 0, of: int = 1) -> int:
        cycle, _, t0 = self.state
        return int((now - t0) * self.fps + (screen % max(1, of)) * cycle.frames / max(1, of))

    def frame(self, now: float, screen: int = 0, of: int = 1) -> torch.Tensor:
        cycle, intro, _ = self.state
        pos = self.frame_index(now, screen, of)
        if intro is not None and 0 <= pos < intro.frames:
            return intro.frame(pos)
        return cycle.frame(pos - (intro.frames if intro is not None else 0))

    def describe(self) -> dict:
        cycle, intro, t0 = self.state if self.state else (None, None, 0.0)
        return {"members": self.members, "cycle_frames": cycle.frames if cycle else 0, "fps": self.fps,
                "t0": t0, "server_time": time.time(), "version": self.version, "intro": intro is not None}


"""The Wall's walk: a cycle through the gallery (a noise loop around each drawing's latent, then a morph to the
next), timed by the server clock so every screen that asks at the same moment gets the same frame.

A drawing that joins the gallery is shown within seconds: the walk is rebuilt with an intro that morphs from
wherever screen 0 is now to the newcomer, and the cycle then starts at the newcomer. `?screen=i&of=n` shifts
screen i by i/n of the cycle, so n screens together show the whole walk at once.

A model switch rebuilds the walk too (the engine's model_version moves on). When the new model's latents have
another shape (another architecture) there is no intro: the walk starts afresh on the new model.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

import torch

from ..errors import UserError
from . import timeline
from .engine import GenItem


class Wall:
    def __init__(self, store, engine, config):
        self.store = store
        self.engine = engine
        self.config = config
        self.version = -1
        self.model_version = -1  # the engine's model the walk was built for
        self.members: list[str] = []
        # (cycle, intro, t0, generation) replaced as one tuple, so a frame never mixes an old cycle with a new
        # start time; the generation names the walk in the frame cache
        self.state: tuple[timeline.Timeline, timeline.Timeline | None, float, int] | None = None
        self.generation = 0
        self.lock = asyncio.Lock()

    @property
    def fps(self) -> int:
        return self.config.wall_fps

    def _stale(self) -> bool:
        return self.state is None or self.store.version != self.version or \
            getattr(self.engine, "model_version", 0) != self.model_version

    async def refresh(self) -> None:
        """Rebuild the walk if the gallery or the model changed since the last frame (cheap check of counters)."""
        if not self._stale():
            return
        async with self.lock:
            if self._stale():
                version, model_version = self.store.version, getattr(self.engine, "model_version", 0)
                await self.engine.call(self._rebuild, time.time())
                self.version, self.model_version = version, model_version

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
        # no intro from a frame of a model of another architecture: a morph between two shapes cannot be drawn
        fits = current is not None and tuple(current.shape) == tuple(members[0][1].shape)
        intro = timeline.Timeline([timeline.morph(current, members[0][1], c.wall_intro_frames)]) \
            if fits and new else None
        t0 = now if new or self.state is None else self.state[2]
        self.members = [m[0] for m in members]
        self.generation += 1
        self.state = (cycle, intro, t0, self.generation)

    def frame_index(self, now: float, screen: int = 0, of: int = 1, state=None) -> int:
        cycle, _, t0, _ = state or self.state
        return int((now - t0) * self.fps + (screen % max(1, of)) * cycle.frames / max(1, of))

    @staticmethod
    def advance(state, pos: int, steps: int = 1) -> int:
        """A frame position `steps` frames on, normalised: 0 .. intro-1 is the intro, then the cycle, round and
        round (so equal positions are equal frames, and the frame cache can share them)."""
        cycle, intro, _, _ = state
        n_intro = intro.frames if intro is not None else 0
        q = pos + steps
        return q if 0 <= q < n_intro else n_intro + (q - n_intro) % cycle.frames

    def position(self, state, now: float, screen: int = 0, of: int = 1, stride: int = 1) -> int:
        """The normalised position of a screen now; streams slower than the wall show every stride-th frame
        (the same ones for every such stream, so they share rendered frames)."""
        pos = self.advance(state, self.frame_index(now, screen, of, state), 0)
        n_intro = state[1].frames if state[1] is not None else 0
        return pos - (pos - n_intro) % stride if pos >= n_intro else pos - pos % stride

    @staticmethod
    def ws_at(state, positions) -> list[torch.Tensor]:
        """ws of normalised positions (any thread: the timelines are read-only)."""
        cycle, intro, _, _ = state
        n_intro = intro.frames if intro is not None else 0
        return [intro.frame(p) if p < n_intro else cycle.frame(p - n_intro) for p in positions]

    def frame(self, now: float, screen: int = 0, of: int = 1) -> torch.Tensor:
        return self.ws_at(self.state, [self.position(self.state, now, screen, of)])[0]

    def describe(self) -> dict:
        cycle, intro, t0, _ = self.state if self.state else (None, None, 0.0, 0)
        return {"members": self.members, "cycle_frames": cycle.frames if cycle else 0, "fps": self.fps,
                "t0": t0, "server_time": time.time(), "version": self.version, "intro": intro is not None}



class WallFrames:
    """JPEG frames of the wall, rendered ahead `batch` at a time in one forward pass and shared by every stream
    that shows the same frame (two browsers on one screen, a player on the MJPEG stream). Keyed by (walk
    generation, position); a new walk drops the old frames. Event loop only."""

    def __init__(self, wall: Wall, engine, quality: int = 90, batch: int = 8, keep: int = 256):
        self.wall, self.engine, self.quality = wall, engine, quality
        self.batch, self.keep = max(1, int(batch)), max(int(keep), 4 * int(batch))
        self.cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self.pending: dict[tuple[int, int], asyncio.Future] = {}
        self.tasks: set[asyncio.Task] = set()
        self.rendered = 0  # frames rendered, and frames sent (for /api/stats and the benchmark)
        self.served = 0
        self.base_keep = self.keep
        self.active: dict[tuple[int, int, int], float] = {}  # (screen, of, stride) -> when it last asked

    async def get(self, now: float, screen: int = 0, of: int = 1, stride: int = 1) -> tuple[int, bytes]:
        """(position, JPEG) of a screen at `now`; the next batch is set going before it is due."""
        state = self.wall.state
        gen = state[3]
        if self.cache and next(iter(self.cache))[0] != gen:
            self.cache = OrderedDict((k, v) for k, v in self.cache.items() if k[0] == gen)
        self.active[(screen, of, stride)] = now
        pos = self.wall.position(state, now, screen, of, stride)
        self._ensure(state, pos, stride)
        self._ensure(state, self.wall.advance(state, pos, self.batch * stride), stride)
        self.served += 1
        for back in range(self.batch):
            # Not rendered yet: the newest frame of the last batch's worth, a frame late rather than a wait. A
            # stream that waits whenever it falls behind asks for a frame further on each time, which is never
            # rendered yet either, and ends up showing a frame per batch.
            at = self.wall.advance(state, pos, -back * stride)
            if (gen, at) in self.cache:
                self.cache.move_to_end((gen, at))
                return at, self.cache[(gen, at)]
        try:
            return pos, await asyncio.shield(self.pending[(gen, pos)])
        except UserError:
            # frames of a walk built for the model before a switch: rebuild it and show the new walk instead
            await self.wall.refresh()
            if self.wall.state is state:
                raise
            return await self.get(now, screen, of, stride)

    async def cover(self, seconds: float, rounds: int = 3) -> int:
        """Render the next `seconds` of every screen streamed in the last few seconds, and wait for them: called
        before a job takes the model thread for that long (a projection), so the wall plays on meanwhile.
        The job starts when this returns, so the frames are counted from then: a round that took a while is
        followed by one for the frames it used up (at most `rounds`; a model slower than the wall never catches
        up). Returns the number of frames now ready ahead."""
        ahead: dict = {}
        for _ in range(max(1, rounds)):
            state, now = self.wall.state, time.time()
            self.active = {k: t for k, t in self.active.items() if now - t < 5.0}
            if state is None or not self.active:
                return 0
            ahead = {k: int(seconds * self.wall.fps / k[2]) + 2 * self.batch for k in self.active}
            self.keep = max(self.base_keep, sum(ahead.values()) + 4 * self.batch)
            for (screen, of, stride), frames in ahead.items():
                pos = self.wall.position(state, now, screen, of, stride)
                for _ in range(frames):  # every missing frame starts a batch: no gap where an earlier round ended
                    if (state[3], pos) not in self.cache and (state[3], pos) not in self.pending:
                        self._ensure(state, pos, stride)
                    pos = self.wall.advance(state, pos, stride)
            waiting = [f for key, f in self.pending.items() if key[0] == state[3]]
            if not waiting:
                break
            await asyncio.wait(waiting)
        return sum(ahead.values())

    def _ensure(self, state, pos: int, stride: int) -> None:
        gen = state[3]
        positions = []
        while len(positions) < self.batch:
            key = (gen, pos)
            if key in self.cache or key in self.pending or pos in positions:
                break
            positions.append(pos)
            pos = self.wall.advance(state, pos, stride)
        if positions:
            futures = {(gen, p): asyncio.get_running_loop().create_future() for p in positions}
            for fut in futures.values():
                fut.add_done_callback(_retrieve)
            self.pending.update(futures)
            task = asyncio.ensure_future(self._render(state, positions, futures))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _render(self, state, positions: list[int], futures: dict) -> None:
        def work():  # model thread: latents and images of the whole batch in one hop
            return self.engine.run_batch([GenItem(ws=ws, quality=self.quality) for ws in self.wall.ws_at(
                state, positions)])

        try:
            jpegs = await self.engine.call(work)
        except Exception as exc:  # noqa: BLE001 - every stream waiting on these frames sees the error
            for fut in futures.values():
                if not fut.done():
                    fut.set_exception(exc)
            return
        finally:
            for key in futures:
                self.pending.pop(key, None)
        for (key, fut), jpeg in zip(futures.items(), jpegs, strict=True):
            if isinstance(jpeg, Exception):  # a frame that does not fit the model (a switch): not cached
                if not fut.done():
                    fut.set_exception(jpeg)
                continue
            self.rendered += 1
            self.cache[key] = jpeg
            if not fut.done():
                fut.set_result(jpeg)
        while len(self.cache) > self.keep:
            self.cache.popitem(last=False)


def _retrieve(fut: asyncio.Future) -> None:
    """Frames rendered ahead that nobody waited for must not log 'exception was never retrieved'."""
    if not fut.cancelled():
        fut.exception()

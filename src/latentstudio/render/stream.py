"""Streaming timelines into pictures: frame iterators for live use, and a renderer that overlaps generation with
encoding where that pays (the encoder runs in a thread, fed through a small bounded queue, so memory stays
flat) and encodes between batches where it does not (see `overlap_pays`).

    frames = iter_frames(G, timeline, FrameLayout(size=(640, 360), fit="fill"), batch=8)  # uint8 batches
    stats = render(G, [timeline], [open_writer("walk.mp4", size, fps=30)], layout)          # one screen
    stats = render(G, screens, writers, layout, preview=open_writer("preview.mp4", ...))    # S screens + tiles

`render` closes the writers it was given when it finishes, and aborts them (no partial files) on any error.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..device import cpu_cores
from ..latent.timeline import Timeline
from ..utils.progress import bar
from .layout import FrameLayout, tile_frames
from .video import FrameWriter


@dataclasses.dataclass
class RenderStats:
    frames: int = 0  # frames per screen
    screens: int = 1
    seconds: float = 0.0  # wall time, end to end
    generate_seconds: float = 0.0  # time the main thread spent making latents and images
    encode_seconds: float = 0.0  # time the encoder thread was busy (layout, conversion, encoding)

    @property
    def fps(self) -> float:
        return self.frames * self.screens / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "fps": round(self.fps, 2)}


@torch.no_grad()
def iter_images(G, timeline: Timeline, batch: int = 8, noise_mode: str = "const", start: int = 0,
                stop: int | None = None) -> Iterator[torch.Tensor]:
    """Images [B, C, H, W] in [-1, 1] (on G's device) for frames start..stop-1 of a timeline."""
    for ws in timeline.iter_ws(G, batch, start, stop):
        yield G.synthesis(ws, noise_mode=noise_mode)


def iter_frames(G, timeline: Timeline, layout: FrameLayout | None = None, batch: int = 8, noise_mode: str = "const",
                start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """uint8 frames [B, H, W, C] laid out for the screen; for live previews and streaming (no encoding)."""
    layout = layout or FrameLayout()
    for images in iter_images(G, timeline, batch, noise_mode, start, stop):
        yield layout.apply(images)


# Batches waiting for the encoder. With the one being encoded and the one being generated, at most
# QUEUE_DEPTH + 2 batches are alive at any time, whatever the video's length.
QUEUE_DEPTH = 2


class _Encoder:
    """Encodes lists of image batches (one per screen) in the caller's thread: layout, uint8, every writer,
    the tiled preview. `put` encodes at once; `finish` and `stop` have nothing to wait for."""

    def __init__(self, layout: FrameLayout, writers: Sequence[FrameWriter], preview: FrameWriter | None,
                 preview_cols: int | None, preview_tile: int):
        self.layout, self.writers, self.preview = layout, list(writers), preview
        self.preview_cols, self.preview_tile = preview_cols, preview_tile
        self.busy = 0.0

    def encode(self, item) -> None:
        t0 = time.perf_counter()
        frames = [self.layout.apply(images) for images in item]
        for writer, batch in zip(self.writers, frames, strict=True):
            writer.write(batch)
        if self.preview is not None:
            self.preview.write(tile_frames(frames, self.preview_cols, self.preview_tile))
        self.busy += time.perf_counter() - t0

    def put(self, item) -> None:
        self.encode(item)

    def finish(self) -> None:
        """Wait until everything put has been written; raise what went wrong."""

    def stop(self) -> None:
        """On an error in the caller: stop encoding (what was put may be dropped)."""


class _ThreadedEncoder(_Encoder):
    """The same work in a thread of its own, fed through a bounded queue, while the caller generates."""

    def __init__(self, *args, depth: int = QUEUE_DEPTH):
        super().__init__(*args)
        self.inbox: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="latentstudio-encoder", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            item = self.inbox.get()
            if item is None:
                return
            if self.error is not None:
                continue  # keep draining so the producer never blocks; it will see the error
            try:
                self.encode(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread and raised there
                self.error = exc

    def put(self, item) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.inbox.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        self.inbox.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self.thread.is_alive():
            self.error = self.error or RuntimeError("render stopped")
            self.inbox.put(None)
            self.thread.join(timeout=10)


def overlap_pays(G) -> bool:
    """Whether encoding in a thread beside the generator is faster than encoding between its batches.

    On a GPU the generator hardly uses the CPU, and on a CPU with cores to spare beyond torch's threads the
    encoder has a core of its own: a thread hides the encoding. When torch's threads already take every
    core (2 threads on 2 cores), an encoder thread does not get a core; it preempts one of torch's threads,
    and every parallel operation waits for the preempted one. Measured on 2 cores (128 px, batch 8): the
    threaded walk took 5.6-7.2 ms a frame where encoding between batches took 3.8-5.4 and the generator
    alone 3.1-4.9."""
    device = torch.device(getattr(G, "device", "cpu"))
    if device.type != "cpu":
        return True
    return cpu_cores() > torch.get_num_threads()


@torch.no_grad()
def render(G, timelines: Sequence[Timeline], writers: Sequence[FrameWriter], layout: FrameLayout | None = None,
           batch: int = 8, noise_mode: str = "const", preview: FrameWriter | None = None,
           preview_cols: int | None = None, preview_tile: int = 256, progress: bool = True,
           desc: str = "render", overlap: bool | None = None) -> RenderStats:
    """Render S timelines (same frame count) into S writers (+ an optional tiled preview), generating the next
    batch while the previous one is encoded (`overlap`; default: where that pays, `overlap_pays`). Closes the
    writers; aborts them on error."""
    layout = layout or FrameLayout()
    timelines = list(timelines)
    total = timelines[0].num_frames
    if any(t.num_frames != total for t in timelines):
        raise ValueError(f"render: every screen needs the same frame count, got {[t.num_frames for t in timelines]}")
    all_writers = list(writers) + ([preview] if preview is not None else [])
    overlap = overlap_pays(G) if overlap is None else overlap
    stats = RenderStats(frames=total, screens=len(timelines))
    progress_bar = bar(total, desc=desc, unit="frame") if progress else None
    t_start = time.perf_counter()
    encoder = (_ThreadedEncoder if overlap else _Encoder)(layout, writers, preview, preview_cols, preview_tile)
    try:
        for i in range(0, total, batch):
            t0 = time.perf_counter()
            idx = np.arange(i, min(i + batch, total))
            images = [G.synthesis(t.ws(G, idx), noise_mode=noise_mode) for t in timelines]
            stats.generate_seconds += time.perf_counter() - t0
            encoder.put(images)
            if progress_bar is not None:
                progress_bar.update(len(idx))
        encoder.finish()
        for writer in all_writers:
            writer.close()
    except BaseException:
        encoder.stop()
        for writer in all_writers:
            writer.abort()
        raise
    finally:
        if progress_bar is not None:
            progress_bar.close()
    stats.seconds = time.perf_counter() - t_start
    stats.encode_seconds = encoder.busy
    return stats

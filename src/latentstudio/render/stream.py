"""Streaming timelines into pictures: frame iterators for live use, and a renderer that keeps encoding off the
generator's critical path: on a GPU (or with cores to spare) the encoder runs in a thread, fed through a small
bounded queue, so memory stays flat; on a CPU whose cores torch's threads already take, two generator workers
of half the threads each take the next batch whenever they are free, and finished batches are encoded in
order by whichever worker is free, so one encodes while the other generates (see `render_mode`).

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
from .color import yuv420
from .layout import FrameLayout, tile_frames
from .video import FrameWriter


@dataclasses.dataclass
class RenderStats:
    frames: int = 0  # frames per screen
    screens: int = 1
    seconds: float = 0.0  # wall time, end to end
    generate_seconds: float = 0.0  # time spent making latents and images (summed over generator workers)
    encode_seconds: float = 0.0  # time spent encoding: layout, conversion, every writer

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
        """One batch per screen: H.264 writers get planar YUV straight from the images when the frame is the
        model's own size (render.color); the others, and the preview, uint8 RGB laid out for the screen."""
        t0 = time.perf_counter()
        rgb: dict[int, np.ndarray] = {}

        def frames(i: int) -> np.ndarray:
            if i not in rgb:
                rgb[i] = self.layout.apply(item[i])
            return rgb[i]

        for i, (writer, images) in enumerate(zip(self.writers, item, strict=True)):
            if writer.takes_yuv420 and self.layout.keeps_size(images):
                writer.write_yuv420(yuv420(images))
            else:
                writer.write(frames(i))
        if self.preview is not None:
            self.preview.write(tile_frames([frames(i) for i in range(len(item))], self.preview_cols,
                                           self.preview_tile))
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


MODES = ("thread", "workers", "inline")
WORKERS = 2  # generator workers of the "workers" mode, torch's threads shared out among them


def render_mode(G) -> str:
    """The mode for `render` on G's device with torch's current thread count.

    - "thread": on a GPU the generator hardly uses the CPU, and on a CPU with cores to spare beyond torch's
      threads the encoder has a core of its own: an encoder thread hides the encoding.
    - "workers": torch's threads take every core (2 threads on 2 cores). An encoder thread would not get a
      core; it preempts one of torch's threads, and every parallel operation waits for the preempted one
      (measured: 5.6-7.2 ms a frame against 3.8-5.4 encoding between batches). Two workers with half the
      threads each instead: while one encodes its batch, the other generates the next, and teams of half
      the size lose less to their barriers (2 cores, 128 px, batch 8: 2 one-thread workers 214-272 images/s
      against 168-224 for one two-thread team, generator alone; docs/walks.md).
    - "inline": one core: encode between batches."""
    device = torch.device(getattr(G, "device", "cpu"))
    if device.type != "cpu" or cpu_cores() > torch.get_num_threads():
        return "thread"
    return "workers" if torch.get_num_threads() >= 2 else "inline"


def threads_per_worker(workers: int = WORKERS) -> int:
    """torch's threads shared out among `workers` generator workers (at least one each)."""
    return max(1, torch.get_num_threads() // workers)


def _generate(G, timelines, idx, noise_mode) -> list:
    return [G.synthesis(t.ws(G, idx), noise_mode=noise_mode) for t in timelines]


def _render_one_team(G, timelines, encoder, total, batch, noise_mode, stats, tick) -> None:
    for i in range(0, total, batch):
        t0 = time.perf_counter()
        images = _generate(G, timelines, np.arange(i, min(i + batch, total)), noise_mode)
        stats.generate_seconds += time.perf_counter() - t0
        encoder.put(images)
        tick(len(images[0]))


class _Batches:
    """The workers' shared queue. Batch indices go, in order, to whichever worker asks next (so a worker that
    the OS slows down takes fewer); finished batches are encoded in order by whichever worker finds the next
    one ready and nobody encoding. A worker never waits for another's turn (waiting, each batch would go at
    the pace of the slower worker: measured, +9-15 % wall time against +3-4 % CPU time); at most `ahead`
    batches are taken and not yet encoded, so memory stays flat. The first error stops everyone."""

    def __init__(self, count: int, encoder: _Encoder, tick, ahead: int):
        self.count, self.encoder, self.tick, self.ahead = count, encoder, tick, ahead
        self.cond = threading.Condition()
        self.taken = self.next = 0
        self.ready: dict[int, list] = {}
        self.encoding = False
        self.error: BaseException | None = None

    def take(self) -> int | None:
        """The next batch to generate, or None when there is none left (or an error stopped the render)."""
        with self.cond:
            self.cond.wait_for(lambda: self.error is not None or self.taken >= self.count
                               or self.taken - self.next < self.ahead)
            if self.error is not None or self.taken >= self.count:
                return None
            self.taken += 1
            return self.taken - 1

    def finish(self, k: int, images: list) -> None:
        """Batch k is generated: encode it, and whatever follows it that is ready, unless someone is encoding
        (that worker will, when it is done)."""
        with self.cond:
            self.ready[k] = images
        while True:
            with self.cond:
                if self.encoding or self.error is not None or self.next not in self.ready:
                    return
                self.encoding, item = True, self.ready.pop(self.next)
            try:
                self.encoder.put(item)
                self.tick(len(item[0]))
            except BaseException as exc:  # recorded before anyone else may encode: nobody writes after it
                self.fail(exc)
                raise
            finally:
                with self.cond:
                    self.encoding = False
                    self.next += 1
                    self.cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self.cond:
            self.error = self.error or exc
            self.ready.clear()
            self.cond.notify_all()


def _render_workers(G, timelines, encoder, total, batch, noise_mode, stats, tick, workers: int = WORKERS) -> None:
    """`workers` threads with torch's threads shared out among them, taking batches from a `_Batches`."""
    starts = list(range(0, total, batch))
    threads_each = threads_per_worker(workers)
    batches, busy = _Batches(len(starts), encoder, tick, ahead=workers + 1), [0.0] * workers

    def work(j: int) -> None:
        torch.set_num_threads(threads_each)  # OpenMP's count is per thread: this worker's team only
        try:
            with torch.no_grad():
                while (k := batches.take()) is not None:
                    t0 = time.perf_counter()
                    images = _generate(G, timelines, np.arange(starts[k], min(starts[k] + batch, total)),
                                       noise_mode)
                    busy[j] += time.perf_counter() - t0
                    batches.finish(k, images)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            batches.fail(exc)

    pool = [threading.Thread(target=work, args=(j,), name=f"latentstudio-render-{j}", daemon=True)
            for j in range(workers)]
    for t in pool:
        t.start()
    try:
        for t in pool:
            t.join()
    except BaseException as exc:  # Ctrl-C in the caller: stop the workers before the writers are aborted
        batches.fail(exc)
        for t in pool:
            t.join(timeout=30)
        raise
    stats.generate_seconds += sum(busy)
    if batches.error is not None:
        raise batches.error


@torch.no_grad()
def render(G, timelines: Sequence[Timeline], writers: Sequence[FrameWriter], layout: FrameLayout | None = None,
           batch: int = 8, noise_mode: str = "const", preview: FrameWriter | None = None,
           preview_cols: int | None = None, preview_tile: int = 256, progress: bool = True,
           desc: str = "render", mode: str | None = None) -> RenderStats:
    """Render S timelines (same frame count) into S writers (+ an optional tiled preview), keeping encoding off
    the generator's way (`mode`: "thread", "workers" or "inline"; default: `render_mode`). Closes the writers;
    aborts them on error."""
    layout = layout or FrameLayout()
    timelines = list(timelines)
    total = timelines[0].num_frames
    if any(t.num_frames != total for t in timelines):
        raise ValueError(f"render: every screen needs the same frame count, got {[t.num_frames for t in timelines]}")
    if mode is not None and mode not in MODES:
        raise ValueError(f"render: mode {mode!r}, use one of {', '.join(MODES)}")
    mode = mode or render_mode(G)
    all_writers = list(writers) + ([preview] if preview is not None else [])
    stats = RenderStats(frames=total, screens=len(timelines))
    progress_bar = bar(total, desc=desc, unit="frame") if progress else None
    tick = progress_bar.update if progress_bar is not None else (lambda n: None)
    t_start = time.perf_counter()
    encoder = (_ThreadedEncoder if mode == "thread" else _Encoder)(layout, writers, preview, preview_cols,
                                                                  preview_tile)
    try:
        if mode == "workers":
            _render_workers(G, timelines, encoder, total, batch, noise_mode, stats, tick)
        else:
            _render_one_team(G, timelines, encoder, total, batch, noise_mode, stats, tick)
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

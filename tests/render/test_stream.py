"""The renderer: flat memory however long the video, generation overlapping encoding, errors surface, screens."""

import os
import threading
import time
import weakref

import numpy as np
import pytest
import torch

from latentstudio.latent.moves import hold, interpolation, noise_loop, spacewalk
from latentstudio.latent.space import LatentSpace
from latentstudio.latent.timeline import Timeline
from latentstudio.render.layout import FrameLayout
from latentstudio.render.stream import QUEUE_DEPTH, iter_frames, render, render_mode
from latentstudio.render.video import FrameWriter, open_writer

from .fakes import FakeG

av = pytest.importorskip("av")


def walk(G, frames: int, seed: int = 0) -> Timeline:
    space = LatentSpace("w")
    centre = space.from_z(G, torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32)))[0]
    return Timeline(space, [spacewalk(centre, space, frames=frames, radius=1.0, speed=0.05, seed=seed)])


class RecordingWriter(FrameWriter):
    """Keeps nothing but a count, a checksum and the frames' sums in order; optional hooks to block or fail."""

    def __init__(self, size, on_write=None):
        super().__init__("memory", size)
        self.on_write, self.checksum, self.closed, self.aborted = on_write, 0, False, False
        self.sums: list[int] = []

    def _write_one(self, frame):
        if self.on_write is not None:
            self.on_write(self.frames_written)
        self.sums.append(int(frame.sum()))
        self.checksum += self.sums[-1]

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True


class LiveBatches:
    """Weak references to every batch seen; the most that were alive at the same time."""

    def __init__(self):
        self.refs, self.seen, self.most = [], 0, 0

    def add(self, batch) -> None:
        self.refs.append(weakref.ref(batch))
        self.seen += 1
        self.check()

    def check(self) -> None:
        self.refs = [r for r in self.refs if r() is not None]
        self.most = max(self.most, len(self.refs))


class CountingG(FakeG):
    def __init__(self, images: LiveBatches, **kw):
        super().__init__(**kw)
        self.images = images

    def synthesis(self, ws, noise_mode="const"):
        out = super().synthesis(ws, noise_mode)
        self.images.add(out)
        return out


class TrackingWriter(FrameWriter):
    """Passes batches on to a real writer; counts live batches (generated images and uint8 frames) and samples
    this process's resident memory at every batch."""

    def __init__(self, inner: FrameWriter, images: LiveBatches):
        super().__init__(inner.path, inner.size, inner.fps)
        self.inner, self.images, self.frames = inner, images, LiveBatches()
        self.takes_yuv420 = inner.takes_yuv420
        self.rss = [resident_bytes()]

    def write(self, frames):
        self._track(frames, self.inner.write)

    def write_yuv420(self, planes):
        self._track(planes, self.inner.write_yuv420)

    def _track(self, batch, write):
        self.frames.add(batch)
        self.images.check()
        write(batch)
        self.rss.append(resident_bytes())

    def close(self):
        self.inner.close()

    def abort(self):
        self.inner.abort()


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident memory is read from /proc (Linux)")
@pytest.mark.parametrize("resolution", [32, 96])  # scaled to 96 px through RGB; the model's size as YUV planes
def test_memory_stays_flat_however_long_the_video(tmp_path, resolution):
    layout = FrameLayout(size=(96, 96))  # 14-27 KB a frame: keeping 3000 frames would cost 40-80 MB

    def run(frames: int) -> tuple[LiveBatches, TrackingWriter]:
        images = LiveBatches()
        G = CountingG(images, resolution=resolution)
        writer = TrackingWriter(open_writer(tmp_path / f"{frames}.mp4", (96, 96), preset="ultrafast"), images)
        render(G, [walk(G, frames)], [writer], layout, batch=16, progress=False)
        return images, writer

    run(300)  # warm up: first-use allocations (x264, torch, numpy) are not growth
    short_images, short = run(300)
    long_images, long = run(3000)
    assert long_images.seen == 188 and long.frames.seen == 188
    # However long the video, only the batches in flight are alive: queued, being encoded, being generated.
    assert long_images.most <= QUEUE_DEPTH + 2 and long.frames.most <= 2
    grow = lambda w: max(w.rss) - w.rss[0]
    assert grow(long) < grow(short) + 20_000_000, (grow(short), grow(long))
    with av.open(str(tmp_path / "3000.mp4")) as c:
        assert c.streams.video[0].frames == 3000


def test_generation_overlaps_encoding_in_the_encoder_thread():
    second_batch_started = threading.Event()
    G = FakeG(on_synthesis=lambda calls: second_batch_started.set() if calls >= 2 else None)
    overlapped = []

    def on_write(index):
        if index == 0:  # still encoding batch 1: batch 2 must be generated meanwhile
            overlapped.append(second_batch_started.wait(timeout=20))

    writer = RecordingWriter((32, 32), on_write)
    stats = render(G, [walk(G, 24)], [writer], batch=8, progress=False, mode="thread")
    assert overlapped == [True] and writer.frames_written == 24 and writer.closed
    assert stats.frames == 24 and stats.encode_seconds > 0 and stats.generate_seconds > 0


def test_one_worker_generates_while_the_other_encodes():
    third_batch_started = threading.Event()
    G = FakeG(on_synthesis=lambda calls: third_batch_started.set() if calls >= 3 else None)
    overlapped = []

    def on_write(index):
        if index == 8:  # a worker encodes the second batch: the other must be generating the third meanwhile
            overlapped.append(third_batch_started.wait(timeout=20))

    threads = torch.get_num_threads()
    writer = RecordingWriter((32, 32), on_write)
    stats = render(G, [walk(G, 32)], [writer], batch=8, progress=False, mode="workers")
    assert overlapped == [True] and writer.frames_written == 32 and writer.closed and stats.generate_seconds > 0
    assert torch.get_num_threads() == threads  # the workers set their own teams, not the caller's


def test_a_slow_worker_does_not_hold_the_other_back():
    third_started, lock = threading.Event(), threading.Lock()
    seen_while_slow = []

    class SlowFirst(FakeG):
        started = 0

        def synthesis(self, ws, noise_mode="const"):
            with lock:
                self.started += 1
                if self.started == 3:
                    third_started.set()
            if torch.equal(ws, first):  # batch 0 takes long (the OS took that worker's core, say) ...
                third_started.wait(timeout=20)  # ... long enough for the other worker to start two batches
                time.sleep(0.2)  # and to try a third, which it may not take (3 batches ahead of the encoder)
                with lock:
                    seen_while_slow.append(self.started)
            return FakeG.synthesis(self, ws, noise_mode)

    G = SlowFirst()
    timeline = walk(G, 64)
    first = timeline.ws(G, np.arange(4))
    writer = RecordingWriter((32, 32))
    render(G, [timeline], [writer], batch=4, progress=False, mode="workers")
    # Meanwhile the other worker took batches 1 and 2, then waited: with turns it would have stopped after
    # batch 1 and the wait above would have timed out.
    assert seen_while_slow == [3] and third_started.is_set()
    reference = RecordingWriter((32, 32))
    render(FakeG(), [timeline], [reference], batch=4, progress=False, mode="inline")
    assert writer.sums == reference.sums and writer.frames_written == 64  # still every frame, in order


def test_every_mode_writes_the_same_video_in_order():
    G = FakeG()
    runs = {}
    for mode in ("thread", "workers", "inline"):
        writer = RecordingWriter((32, 32))
        stats = render(G, [walk(G, 30)], [writer], batch=4, progress=False, mode=mode)
        runs[mode] = (writer.frames_written, writer.sums, writer.closed)
        assert stats.frames == 30 and stats.encode_seconds > 0
    assert runs["thread"] == runs["workers"] == runs["inline"] and runs["inline"][0] == 30 and runs["inline"][2]
    assert len(set(runs["inline"][1])) > 20  # the frames differ, so the order is checked
    with pytest.raises(ValueError, match="mode 'fast'"):
        render(G, [walk(G, 4)], [RecordingWriter((32, 32))], progress=False, mode="fast")


def test_encoder_placement_follows_cores_threads_and_device(monkeypatch):
    G = FakeG()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert render_mode(G) == "workers"  # 2 torch threads on 2 cores: two one-thread workers
        torch.set_num_threads(1)
        assert render_mode(G) == "thread"  # a core to spare
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
        assert render_mode(G) == "inline"  # one core, one thread: encode between batches
        G.device = torch.device("cuda")
        torch.set_num_threads(2)
        assert render_mode(G) == "thread"  # the GPU generates, the CPU encodes
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("mode", ["thread", "workers", "inline"])
def test_encoder_errors_surface_and_abort_every_writer(tmp_path, mode):
    G = FakeG()

    calls = []

    def fail(index):
        calls.append(index)
        if index == 10:
            raise OSError("disk full")

    good = open_writer(tmp_path / "good.mp4", (32, 32))
    bad = RecordingWriter((32, 32), fail)
    with pytest.raises(OSError, match="disk full"):
        render(G, [walk(G, 64), walk(G, 64, seed=1)], [good, bad], batch=4, progress=False, mode=mode)
    assert bad.aborted and not bad.closed
    assert calls == list(range(11))  # nothing is written once a write failed (the error is the first one)
    assert list(tmp_path.iterdir()) == []  # the half-written MP4 is gone


def test_screens_and_preview_stay_in_sync(tmp_path):
    G = FakeG()
    space = LatentSpace("w")
    keys = [space.from_z(G, torch.full((1, 8), v))[0] for v in (-2.0, 2.0)]
    screens = [Timeline(space, [interpolation(keys[0], keys[1], 20), hold(keys[1], 5)], offset=o) for o in (0, 10)]
    writers = [RecordingWriter((32, 32)) for _ in screens]
    preview = RecordingWriter((68, 32))
    render(G, screens, writers, batch=6, preview=preview, preview_cols=2, preview_tile=32, progress=False)
    assert [w.frames_written for w in writers + [preview]] == [25, 25, 25]
    assert preview.checksum == sum(w.checksum for w in writers)  # tiles at full size: the same pixels
    with pytest.raises(ValueError, match="same frame count"):
        other = Timeline(space, [hold(keys[0], 7)])
        render(G, [screens[0], other], [RecordingWriter((32, 32)) for _ in range(2)], progress=False)


def test_iter_frames_gives_what_render_writes(tmp_path):
    G = FakeG()
    space = LatentSpace("w")
    centre = space.from_z(G, torch.ones(1, 8))[0]
    timeline = Timeline(space, [noise_loop(centre, space, stops=3, frames=5, sigma=0.5, seed=2)])
    layout = FrameLayout(size=(40, 24), fit="fill")
    frames = np.concatenate(list(iter_frames(G, timeline, layout, batch=4)))
    assert frames.shape == (15, 24, 40, 3)
    render(G, [timeline], [open_writer(tmp_path / "png", (40, 24))], layout, batch=7, progress=False)
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "png" / "frame_000011.png")), frames[11])


def test_progress_bar_only_on_a_terminal_unless_asked(capsys, monkeypatch):
    G = FakeG()
    monkeypatch.delenv("LATENTSTUDIO_PROGRESS", raising=False)
    render(G, [walk(G, 8)], [RecordingWriter((32, 32))], batch=4)  # stderr is captured here: not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("LATENTSTUDIO_PROGRESS", "1")
    render(G, [walk(G, 8)], [RecordingWriter((32, 32))], batch=4, desc="walk")
    err = capsys.readouterr().err
    assert "walk" in err and "8/8" in err


class YuvRecordingWriter(RecordingWriter):
    """Takes yuv420p planes too, and notes which kind each batch came as."""

    takes_yuv420 = True

    def __init__(self, size):
        super().__init__(size)
        self.kinds: list[str] = []

    def write(self, frames):
        self.kinds.append("rgb")
        super().write(frames)

    def write_yuv420(self, planes):
        self.kinds.append("yuv")
        super().write_yuv420(planes)

    def _write_one_yuv420(self, plane):
        self.sums.append(int(plane.sum()))


def test_h264_writers_get_planes_at_the_models_size_and_rgb_otherwise(tmp_path):
    G = FakeG()
    same, scaled, preview = YuvRecordingWriter((32, 32)), YuvRecordingWriter((48, 32)), RecordingWriter((68, 32))
    render(G, [walk(G, 12)], [same], batch=4, progress=False)
    render(G, [walk(G, 12)], [scaled], FrameLayout(size=(48, 32), fit="fill"), batch=4, progress=False)
    assert same.kinds == ["yuv"] * 3 and scaled.kinds == ["rgb"] * 3
    assert same.frames_written == scaled.frames_written == 12
    two = [YuvRecordingWriter((32, 32)) for _ in range(2)]
    render(G, [walk(G, 8), walk(G, 8, seed=1)], two, batch=4, preview=preview, preview_cols=2, preview_tile=32,
           progress=False)
    assert [w.kinds for w in two] == [["yuv"] * 2] * 2 and preview.frames_written == 8  # preview tiles RGB


def test_a_walk_through_planes_looks_like_the_rgb_route(tmp_path):
    G = FakeG()
    timeline = walk(G, 16)
    render(G, [timeline], [open_writer(tmp_path / "yuv.mp4", (32, 32))], batch=4, progress=False)
    frames = np.concatenate(list(iter_frames(G, timeline, batch=4)))
    with av.open(str(tmp_path / "yuv.mp4")) as container:
        got = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert got.shape == frames.shape and np.abs(got.astype(int) - frames).mean() < 3

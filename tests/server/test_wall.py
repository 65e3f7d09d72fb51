"""The Wall's walk: continuous loops and morphs, screens offset along one cycle, newcomers joining smoothly."""

from __future__ import annotations

import time

import torch

from latentstudio.server import timeline
from latentstudio.server.config import ServeConfig
from latentstudio.server.wall import Wall

from .conftest import png_bytes, wait_for


def test_timeline_loops_close_and_morphs_hit_their_keys():
    a, b = torch.zeros(4, 8), torch.ones(4, 8)
    tl = timeline.build([a, b], "ballad", frames=30, stops=3, strength=0.5, seed=0)
    assert tl.frames == 2 * 30 + 2 * 30
    assert torch.equal(tl.frame(0), a) and torch.equal(tl.frame(tl.frames), a)  # cyclic
    assert torch.equal(tl.frame(30), a)  # the loop around a comes back to a
    assert torch.equal(tl.frame(60), b)  # ... and the morph ends at b
    assert (tl.frame(15) - a).abs().max() > 0.2  # the loop does move away from a
    steps = torch.stack([(tl.frame(k + 1) - tl.frame(k)).abs().max() for k in range(tl.frames)])
    assert steps.max() < 0.3  # no jumps anywhere along the cycle


class FakeStore:
    def __init__(self):
        self.version, self.entries = 0, []

    def gallery(self):
        return [{"drawing_id": d} for d in self.entries]


class FakeEngine:
    def __init__(self):
        self.latents = {}

    def resolve(self, key, default_psi=0.7):
        return self.latents[key["drawing"]]

    def seed_ws(self, seed, psi):
        return torch.full((4, 8), float(seed))


def test_screens_are_offset_and_newcomers_join_from_the_current_frame():
    store, engine = FakeStore(), FakeEngine()
    config = ServeConfig(wall_fps=10, wall_loop_stops=3, wall_stop_frames=5, wall_morph_frames=10,
                         wall_intro_frames=8)
    wall = Wall(store, engine, config)
    wall._rebuild(100.0)
    assert wall.members == ["seed0", "seed1", "seed2", "seed3"]
    cycle = wall.state[0]
    assert cycle.frames == 4 * (15 + 10)
    assert wall.frame_index(101.0, 1, 4) - wall.frame_index(101.0, 0, 4) == cycle.frames // 4
    engine.latents["d1"] = torch.full((4, 8), 7.0)
    store.entries.append("d1")
    now = 103.3
    before = wall.frame(now)
    wall._rebuild(now)
    assert wall.members == ["d1"]
    assert torch.allclose(wall.frame(now), before)  # screen 0 continues from where it was ...
    assert torch.allclose(wall.frame(now + 0.85), torch.full((4, 8), 7.0))  # ... and reaches the newcomer


def test_a_new_drawing_reaches_the_wall_stream(client):
    with client.websocket_connect("/api/wall/ws?screen=0&of=1&fps=30") as ws:
        assert ws.receive_json()["type"] == "hello"
        assert ws.receive_json()["members"][0].startswith("seed")
        drawing = client.post("/api/drawings", content=png_bytes(), headers={"content-type": "image/png"}).json()
        seen = []

        def joined():
            msg = ws.receive()
            if msg.get("text"):
                seen.append(msg["text"])
            return any(drawing["id"] in t for t in seen)

        wait_for(joined, timeout=20, step=0)


def test_wall_mjpeg_stream_is_bounded_and_paced(client):
    import time

    client.get("/api/wall")  # build the walk first
    client.get("/api/image", params={"seed": 0})  # and warm up the model thread
    start = time.monotonic()
    body = client.get("/api/wall.mjpeg", params={"seconds": 2.0, "fps": 10}).content
    elapsed = time.monotonic() - start
    frames = body.count(b"Content-Type: image/jpeg")
    assert body.count(b"\xff\xd8\xff") >= frames >= 3
    assert frames <= 22 and elapsed < 15  # paced at 10 fps, and it ends by itself
    assert client.get("/api/wall.mjpeg", params={"seconds": 0}).status_code == 422


class BatchEngine(FakeEngine):
    """Records the size of every forward pass; a 'JPEG' is the first value of its ws."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def run_batch(self, items):
        self.batches.append(len(items))
        return [f"{float(item.ws[0, 0]):.4f}".encode() for item in items]

    async def call(self, fn, *args):
        return fn(*args)


def test_wall_frames_render_ahead_in_batches_shared_by_streams():
    import asyncio

    from latentstudio.server.wall import WallFrames

    store, engine = FakeStore(), BatchEngine()
    wall = Wall(store, engine, ServeConfig(wall_fps=10, wall_loop_stops=3, wall_stop_frames=5,
                                           wall_morph_frames=10))
    wall._rebuild(100.0)
    cycle = wall.state[0].frames

    async def run():
        frames = WallFrames(wall, engine, batch=8)
        first = [await frames.get(100.01 + k / 10) for k in range(9)]  # frames 0 .. 8, one tick apart
        await asyncio.sleep(0)
        assert engine.batches == [8, 8, 8]  # the frame's batch, the next, and the one after once 8 was shown
        again = [await frames.get(100.01 + k / 10) for k in range(9)]  # a second browser on the same screen
        assert again == first and engine.batches == [8, 8, 8]
        wrapped = await frames.get(100.01 + (cycle + 3) / 10)  # the cycle comes round: the same frames again
        assert wrapped == first[3]
        slow = [await frames.get(100.01 + k / 10, stride=2) for k in range(0, 8)]  # a 5 fps stream
        assert [p for p, _ in slow] == [0, 0, 2, 2, 4, 4, 6, 6]
        return first

    first = asyncio.run(run())
    assert [p for p, _ in first] == list(range(9))
    expected = [f"{float(w[0, 0]):.4f}".encode() for w in wall.ws_at(wall.state, range(9))]
    assert [j for _, j in first] == expected


def test_streams_per_client_are_capped_with_a_clear_reason(make_client):
    from starlette.websockets import WebSocketDisconnect

    client = make_client(max_streams_per_client=1, wall_fps=10)
    with client.websocket_connect("/api/wall/ws") as first:
        assert first.receive_json()["type"] == "hello"
        for path in ("/api/wall/ws", "/api/walk/ws"):
            with client.websocket_connect(path) as second:
                msg = second.receive_json()
                assert msg["type"] == "error" and "too many open streams" in msg["detail"]
                try:
                    second.receive_text()
                    raise AssertionError("the refused socket stayed open")
                except WebSocketDisconnect as closed:
                    assert closed.code == 1008 and "limit 1" in closed.reason
        r = client.get("/api/wall.mjpeg", params={"seconds": 1})
        assert r.status_code == 429 and "too many open streams" in r.json()["detail"]
    # the slot is given back when the stream closes
    assert client.app.state.studio.streams.open == {}
    with client.websocket_connect("/api/walk/ws") as again:
        again.send_json({"keys": [{"seed": 1}], "frames": 4, "fps": 30})
        assert again.receive_json()["type"] == "walk"


def test_a_stream_that_falls_behind_shows_the_newest_rendered_frame_instead_of_waiting():
    import asyncio

    from latentstudio.server.wall import WallFrames

    class GatedEngine(BatchEngine):
        gate: asyncio.Event | None = None

        async def call(self, fn, *args):
            await self.gate.wait()
            return fn(*args)

    store, engine = FakeStore(), GatedEngine()
    wall = Wall(store, engine, ServeConfig(wall_fps=10, wall_loop_stops=3, wall_stop_frames=5, wall_morph_frames=10))
    wall._rebuild(100.0)

    async def run():
        engine.gate = asyncio.Event()
        engine.gate.set()
        frames = WallFrames(wall, engine, batch=8)
        assert (await frames.get(100.01))[0] == 0  # the first frame is waited for
        await asyncio.sleep(0)  # frames 8 .. 15 arrive
        engine.gate.clear()  # the model is busy from now on
        pos, jpeg = await asyncio.wait_for(frames.get(102.01), 2)  # frame 20 is due, 13 .. 15 are there
        assert pos == 15 and jpeg == frames.cache[(wall.state[3], 15)]
        assert (wall.state[3], 20) in frames.pending  # ... and frame 20 on is on its way
        engine.gate.set()

    asyncio.run(run())


def test_the_wall_is_rendered_ahead_before_a_long_job_takes_the_model():
    import asyncio

    from latentstudio.server.wall import WallFrames

    class SerialEngine(BatchEngine):  # one model thread, 0.15 s a batch: the batches ahead take over a second
        lock: asyncio.Lock | None = None

        async def call(self, fn, *args):
            async with self.lock:
                await asyncio.sleep(0.15)
                return fn(*args)

    store, engine = FakeStore(), SerialEngine()
    wall = Wall(store, engine, ServeConfig(wall_fps=10, wall_loop_stops=3, wall_stop_frames=5, wall_morph_frames=10))
    wall._rebuild(100.0)

    async def run():
        engine.lock = asyncio.Lock()
        frames = WallFrames(wall, engine, batch=4, keep=16)
        assert await frames.cover(3.0) == 0  # nobody is watching: nothing to do
        await frames.get(time.time(), screen=1, of=2)
        ready = await frames.cover(3.0)  # 3 s at 10 fps: 30 frames of screen 1
        now = time.time()
        state = wall.state
        upcoming = [wall.position(state, now + k / 10, 1, 2) for k in range(30)]
        assert ready >= 30 and all((state[3], p) in frames.cache for p in upcoming)

    asyncio.run(run())


def test_a_model_of_another_shape_starts_the_walk_afresh_without_an_intro():
    import asyncio

    store, engine = FakeStore(), BatchEngine()
    engine.model_version = 0
    config = ServeConfig(wall_fps=10, wall_loop_stops=3, wall_stop_frames=5, wall_morph_frames=10,
                         wall_intro_frames=8)
    wall = Wall(store, engine, config)
    engine.latents["d1"] = torch.full((4, 8), 7.0)
    store.entries.append("d1")

    async def run():
        await wall.refresh()
        assert wall.members == ["d1"]
        generation = wall.state[3]
        await wall.refresh()
        assert wall.state[3] == generation  # nothing changed: the walk is kept
        # a switch to a model of another architecture: the drawing's latent no longer fits (skipped), and the
        # seeds the wall falls back to have the new model's shape
        engine.latents.clear()
        engine.seed_ws = lambda seed, psi: torch.full((2, 16), float(seed))
        engine.model_version = 1
        await wall.refresh()  # the store did not change: the model version alone rebuilds the walk
        assert wall.state[3] == generation + 1 and wall.members[0].startswith("seed")

    asyncio.run(run())
    assert wall.state[1] is None  # no morph from a frame of the old shape to one of the new
    now = time.time()
    assert all(wall.frame(now + k / 10).shape == (2, 16) for k in range(20))

"""The Wall's walk: continuous loops and morphs, screens offset along one cycle, newcomers joining smoothly."""

from __future__ import annotations

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

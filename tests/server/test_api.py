"""The generation API and the RunwayML-compatible endpoints on a tiny model."""

from __future__ import annotations

import asyncio

import numpy as np
import torch

from latentstudio.latent.seeds import z_from_seeds
from latentstudio.render.images import to_uint8
from latentstudio.server.engine import Engine, GenItem, adapt_z

from .conftest import decode_data_url, tiny_loaded


def reference(G, seeds, psi):
    with torch.no_grad():
        return to_uint8(G.synthesis(G.mapping(z_from_seeds(seeds, G.z_dim), None, truncation_psi=psi),
                                    noise_mode="const"))


def test_info_describes_runway_inputs_and_outputs(client, tiny_model):
    info = client.get("/info").json()
    z, trunc = info["inputs"]
    assert (z["name"], z["type"], z["length"]) == ("z", "vector", tiny_model.G.z_dim)
    assert (trunc["name"], trunc["type"], trunc["default"]) == ("truncation", "number", 0.8)
    out = info["outputs"][0]
    assert (out["name"], out["type"], out["width"]) == ("image", "image", 32)


def test_query_returns_jpeg_data_url_and_adapts_z_length(client, tiny_model):
    rng = np.random.RandomState(1)
    z512 = rng.randn(512).tolist()
    r = client.post("/query", json={"z": z512, "truncation": 0.8})
    assert r.status_code == 200 and r.json()["image"].startswith("data:image/jpeg;base64,")
    long_img = decode_data_url(r.json()["image"])
    assert long_img.shape == (32, 32, 3)
    # documented rule: only the first z_dim values are used
    cut = decode_data_url(client.post("/query", json={"z": z512[:32], "truncation": 0.8}).json()["image"])
    assert np.array_equal(long_img, cut)
    short = decode_data_url(client.post("/query", json={"z": z512[:5], "truncation": 0.8}).json()["image"])
    padded = decode_data_url(client.post("/query", json={"z": z512[:5] + [0.0] * 27,
                                                         "truncation": 0.8}).json()["image"])
    assert np.array_equal(short, padded) and not np.array_equal(short, cut)
    assert client.get("/data").json() == client.post("/query", json={"z": z512[:5] + [0.0] * 27}).json()
    assert adapt_z([1.0, 2.0], 4).tolist() == [1.0, 2.0, 0.0, 0.0]


def test_query_rejects_bad_input_with_4xx(client):
    assert client.post("/query", json={"z": []}).status_code == 422
    assert client.post("/query", json={"z": [1.0] * 8, "truncation": 5}).status_code == 422
    r = client.post("/query", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]
    r = client.post("/query", content=b'{"z": [NaN, 1.0]}', headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_generate_seeds_match_nvidia_seed_semantics(client, tiny_model):
    r = client.post("/api/generate", json={"seeds": [3, 11], "truncation": 0.5, "format": "png"})
    got = np.stack([decode_data_url(u) for u in r.json()["images"]])
    assert np.array_equal(got, reference(tiny_model.G, [3, 11], 0.5))
    one = client.get("/api/image", params={"seed": 3, "truncation": 0.5})
    assert one.headers["content-type"] == "image/jpeg" and one.content[:3] == b"\xff\xd8\xff"


def test_neighbours_are_numbered_keys_that_reproduce_their_images(client):
    body = {"key": {"seed": 5}, "count": 4, "strength": 0.8, "seed": 2}
    r = client.post("/api/neighbours", json=body).json()
    assert len(r["images"]) == len(r["keys"]) == 4
    again = client.post("/api/generate", json={"keys": r["keys"][2:3], "format": "png"}).json()["images"][0]
    neigh = client.post("/api/neighbours", json={**body, "count": 3}).json()["keys"][2]
    assert decode_data_url(again).shape == (32, 32, 3)
    assert neigh == r["keys"][2]  # the neighbour's key does not depend on how many were asked for
    imgs = [decode_data_url(u).astype(int) for u in r["images"]]
    assert np.abs(imgs[0] - imgs[1]).mean() > 1  # different neighbours differ
    parent = client.post("/api/generate", json={"keys": [{"seed": 5}]}).json()["images"][0]
    zero = client.post("/api/neighbours", json={**body, "strength": 0.0, "count": 1}).json()["images"][0]
    assert np.array_equal(decode_data_url(zero), decode_data_url(parent))


def test_interpolation_frames_start_and_end_at_the_keys(client):
    frames = client.post("/api/interpolate", json={"a": {"seed": 1}, "b": {"seed": 2}, "frames": 5}).json()["images"]
    ends = client.post("/api/generate", json={"seeds": [1, 2]}).json()["images"]
    assert len(frames) == 5
    assert np.array_equal(decode_data_url(frames[0]), decode_data_url(ends[0]))
    # Batches of 5 and 2 may round differently in the last float bit (as in the micro-batching test below);
    # through uint8 and JPEG that is at most a few levels.
    assert np.abs(decode_data_url(frames[-1]).astype(int) - decode_data_url(ends[1]).astype(int)).max() <= 8


def test_keys_validate_and_unknown_drawings_are_404(client):
    assert client.post("/api/generate", json={"keys": [{"seed": 1, "drawing": "x"}]}).status_code == 422
    assert client.post("/api/generate", json={"keys": [{"w": [0.1] * 7}]}).status_code == 400
    assert client.post("/api/generate", json={"keys": [{"w": [0.1] * 32}]}).status_code == 200
    r = client.post("/api/generate", json={"keys": [{"drawing": "0123456789abcdef"}]})
    assert r.status_code == 404 and "0123456789abcdef" in r.json()["detail"]
    assert client.post("/api/generate", json={"seeds": [1], "keys": [{"seed": 1}]}).status_code == 422


def test_micro_batching_shares_forward_passes_and_matches_single_renders(tiny_model):
    async def run(batching):
        engine = Engine(tiny_model, torch.device("cpu"), max_batch=16, max_wait_ms=20, batching=batching)
        engine.start()
        z = torch.from_numpy(np.random.RandomState(0).randn(12, 32)).float()
        try:
            out = await asyncio.gather(*(engine.render(GenItem(z=z[i], psi=0.7, fmt="raw")) for i in range(12)))
        finally:
            await engine.stop()
        return np.stack(out), engine.batcher.batches

    batched, n_batched = asyncio.run(run(True))
    single, n_single = asyncio.run(run(False))
    assert n_single == 12 and n_batched < 4
    assert np.abs(batched.astype(int) - single.astype(int)).max() <= 1  # batched maths == one at a time


def test_walk_websocket_streams_frames_and_reports_bad_specs(client):
    with client.websocket_connect("/api/walk/ws") as ws:
        ws.send_text('{"keys": [{"seed": 1}], "mode": "loop"')
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"keys": [{"seed": 1}, {"seed": 2}], "mode": "ballad", "frames": 6, "stops": 3, "fps": 30})
        msg = ws.receive_json()
        assert msg["type"] == "walk" and msg["frames"] == 2 * (3 * 2) + 2 * 6
        frames = [ws.receive_bytes() for _ in range(3)]
        assert all(f[:3] == b"\xff\xd8\xff" for f in frames)


def test_render_job_writes_an_mp4_with_every_frame(client):
    import av

    r = client.post("/api/render", json={"keys": [{"seed": 1}, {"seed": 2}, {"seed": 3}], "frames": 5, "fps": 10})
    assert r.status_code == 202
    job = r.json()["job"]
    from .conftest import wait_for

    status = wait_for(lambda: (s := client.get(f"/api/jobs/{job}").json())["status"] in ("done", "failed") and s)
    assert status["status"] == "done", status
    video = client.get(f"/api/jobs/{job}/video")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    import io

    with av.open(io.BytesIO(video.content)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 2 * 5 + 1 == status["result"]["frames"] and frames[0].width == 32  # ends on the last key
    assert client.post("/api/render", json={"keys": []}).status_code == 422


def test_runway_endpoints_answer_cross_origin_requests_and_the_api_does_not(client):
    pre = client.options("/query", headers={"Origin": "http://p5js.example", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "*"
    assert client.get("/info").headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in client.get("/api/model").headers


def test_a_lone_request_is_not_held_back_by_batching(tiny_model):
    import time

    async def run():
        engine = Engine(tiny_model, torch.device("cpu"), max_batch=16, max_wait_ms=2000, batching=True)
        engine.start()
        try:
            z = torch.zeros(32)
            await engine.render(GenItem(z=z, fmt="raw"))  # warm-up
            t = time.perf_counter()
            await engine.render(GenItem(z=z, fmt="raw"))
            return time.perf_counter() - t
        finally:
            await engine.stop()

    assert asyncio.run(run()) < 1.5  # far below the 2 s batching window


def test_flat_and_nested_w_work_on_models_wider_than_64(make_client):
    wide = tiny_loaded(w_dim=128)
    client = make_client(model=wide)
    G = wide.G
    w = np.random.RandomState(0).randn(G.w_dim).round(4).tolist()
    flat = client.post("/api/generate", json={"keys": [{"w": w}], "format": "png"})
    assert flat.status_code == 200, flat.json()
    nested = client.post("/api/generate", json={"keys": [{"w": [w] * G.num_ws}], "format": "png"})
    assert nested.status_code == 200
    assert np.array_equal(decode_data_url(flat.json()["images"][0]), decode_data_url(nested.json()["images"][0]))
    for bad in ([0.5] * 5000, [[0.5] * 8] * 65, [[0.5] * 5000]):  # too long a row, too many rows
        assert client.post("/api/generate", json={"keys": [{"w": bad}]}).status_code == 422
    r = client.post("/api/generate", json={"keys": [{"w": w[:100]}]})
    assert r.status_code == 400 and "128" in r.json()["detail"]  # fits the schema, not this model


def test_neighbour_strength_zero_is_the_parent_itself(client):
    parent = client.post("/api/generate", json={"keys": [{"seed": 5}], "format": "png"}).json()["images"][0]
    keys = [{"of": {"seed": 5}, "index": 0, "strength": 0.0, "noise_seed": 3},
            {"of": {"seed": 5}, "index": 2, "strength": 0, "noise_seed": 3}]
    images = client.post("/api/generate", json={"keys": keys, "format": "png"}).json()["images"]
    for img in images:
        assert np.array_equal(decode_data_url(img), decode_data_url(parent))
    moved = client.post("/api/generate", json={"keys": [{**keys[0], "strength": 0.5}], "format": "png"})
    assert not np.array_equal(decode_data_url(moved.json()["images"][0]), decode_data_url(parent))


def test_truncation_bounds_agree_between_info_and_query(client):
    trunc = client.get("/info").json()["inputs"][1]
    assert client.post("/query", json={"z": [0.1] * 32, "truncation": trunc["max"]}).status_code == 200
    assert client.post("/query", json={"z": [0.1] * 32, "truncation": trunc["max"] + 0.01}).status_code == 422
    assert client.post("/query", json={"z": [0.1] * 32, "truncation": trunc["min"]}).status_code == 200


def test_walk_over_an_unknown_drawing_reports_an_error_and_keeps_the_socket(client):
    with client.websocket_connect("/api/walk/ws") as ws:
        ws.send_json({"keys": [{"drawing": "0123456789abcdef"}], "fps": 30})
        msg = ws.receive_json()
        assert msg["type"] == "error" and "0123456789abcdef" in msg["detail"]
        ws.send_json({"keys": [{"w": [0.1] * 7}], "fps": 30})  # wrong latent length for this model
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"keys": [{"seed": 1}, {"seed": 2}], "frames": 4, "fps": 30})
        assert ws.receive_json()["type"] == "walk"
        assert ws.receive_bytes()[:3] == b"\xff\xd8\xff"  # the same socket goes on streaming


def test_render_jobs_refuse_walks_over_the_frame_limit_and_are_rate_limited(make_client):
    client = make_client(max_render_frames=50, job_burst=2, job_rate=0.01, start_jobs=False)
    r = client.post("/api/render", json={"keys": [{"seed": 1}, {"seed": 2}], "frames": 60})
    assert r.status_code == 422 and "61 frames" in r.json()["detail"] and "50" in r.json()["detail"]
    ok = {"keys": [{"seed": 1}, {"seed": 2}], "frames": 10}
    assert client.post("/api/render", json=ok).status_code == 202
    r = client.post("/api/render", json=ok)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert client.app.state.studio.store.counts()["jobs"] == 1


def test_image_for_a_seed_is_one_batched_model_item(client, monkeypatch):
    import base64

    engine = client.app.state.studio.engine
    hops = []
    real_call = engine.call

    async def counting_call(fn, *args):
        hops.append(fn)
        return await real_call(fn, *args)

    monkeypatch.setattr(engine, "call", counting_call)
    before = engine.batcher.items
    one = client.get("/api/image", params={"seed": 3, "truncation": 0.5})
    assert hops == [] and engine.batcher.items == before + 1  # seed mapping and synthesis in one item
    monkeypatch.setattr(engine, "call", real_call)
    same = client.post("/api/generate", json={"seeds": [3], "truncation": 0.5}).json()["images"][0]
    assert one.content == base64.b64decode(same.split(",", 1)[1])


def test_runway_error_endpoint_reports_the_latest_query_error(make_client):
    client = make_client(generate_burst=2, generate_rate=0.01)
    assert client.get("/error").json()["error"] is None
    assert client.post("/query", json={"z": [0.5] * 32, "truncation": 7}).status_code == 422
    assert "truncation" in client.get("/error").json()["error"]
    client.post("/api/generate", json={"seeds": [1, 2, 3]})  # other routes' errors are not RunwayML's
    assert "truncation" in client.get("/error").json()["error"]
    codes = [client.post("/query", json={"z": [0.5] * 32}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert "too many generate requests" in client.get("/error").json()["error"]
    assert client.get("/error").headers["access-control-allow-origin"] == "*"


def test_neighbour_keys_carry_the_truncation_their_parent_was_resolved_with(client):
    body = {"key": {"seed": 5}, "count": 3, "strength": 0.8, "seed": 2}
    r = client.post("/api/neighbours", json=body).json()
    key = r["keys"][2]
    assert key["of"]["seed"] == 5 and key["of"]["truncation"] == 0.7  # the server's default truncation

    def render(k, psi, fmt="png"):
        out = client.post("/api/generate", json={"keys": [k], "truncation": psi, "format": fmt}).json()
        return decode_data_url(out["images"][0]), out["keys"][0]

    low, _ = render(key, 0.2)
    high, _ = render(key, 1.0)
    assert np.array_equal(low, high)  # the key reproduces its image under any default truncation
    shown = decode_data_url(r["images"][2]).astype(int)  # ... the image it was picked from (both JPEG)
    assert np.abs(render(key, 0.2, "jpeg")[0].astype(int) - shown).max() <= 8
    loose = {**key, "of": {"seed": 5}}  # a key without the truncation depends on the caller's default ...
    moved, named = render(loose, 0.2)
    assert not np.array_equal(moved, low)
    assert named["of"]["truncation"] == 0.2  # ... so /api/generate names the one it used
    nested = client.post("/api/neighbours", json={"key": loose, "count": 1}).json()["keys"][0]
    assert nested["of"]["of"]["truncation"] == 0.7  # pinned at any depth
    pinned = client.post("/api/neighbours", json={"key": {"seed": 5, "truncation": 0.4}, "count": 1}).json()
    assert pinned["keys"][0]["of"]["truncation"] == 0.4  # a truncation the caller gave is kept


def next_text(ws, limit=1000) -> dict:
    """The next JSON message of a stream, skipping its frames."""
    import json

    for _ in range(limit):
        msg = ws.receive()
        assert msg["type"] == "websocket.send", f"the stream closed: {msg}"
        if msg.get("text") is not None:
            return json.loads(msg["text"])
    raise AssertionError(f"no text message in {limit} messages")


def test_walk_specs_are_rate_limited_like_generation(make_client):
    client = make_client(generate_burst=3, generate_rate=0.01)
    with client.websocket_connect("/api/walk/ws") as ws:
        ws.send_json({"keys": [{"seed": 1}, {"seed": 2}], "frames": 4, "fps": 30})
        assert ws.receive_json()["type"] == "walk"  # two keys: two of the three tokens
        ws.send_json({"keys": [{"seed": 3}, {"seed": 4}], "frames": 4, "fps": 30})
        msg = next_text(ws)
        assert msg["type"] == "error" and "too many generate requests" in msg["detail"] and msg["retry_after"] >= 1
        assert ws.receive_bytes()[:3] == b"\xff\xd8\xff"  # the socket stays open, the first walk plays on
    assert client.post("/query", json={"z": [0.5] * 32}).status_code == 200  # the same bucket: one token left
    assert client.post("/query", json={"z": [0.5] * 32}).status_code == 429


def test_an_item_that_does_not_fit_the_model_fails_alone_in_its_batch(tiny_model):
    from latentstudio.errors import UserError

    async def run():
        engine = Engine(tiny_model, torch.device("cpu"), max_batch=16, max_wait_ms=50, batching=True)
        engine.start()
        items = [GenItem(z=torch.zeros(32), fmt="raw"), GenItem(ws=torch.zeros(3, 7), fmt="raw"),  # old model's
                 GenItem(seed=1, psi=0.7, fmt="raw"), GenItem(z=torch.zeros(5), fmt="raw")]
        try:
            out = await asyncio.gather(*(engine.render(i) for i in items), return_exceptions=True)
        finally:
            await engine.stop()
        return out, engine.batcher.batches

    out, batches = asyncio.run(run())
    assert batches == 1  # all four shared one forward pass
    assert isinstance(out[1], UserError) and "[3, 7]" in str(out[1])
    assert isinstance(out[3], UserError) and "[5]" in str(out[3])
    assert out[0].shape == out[2].shape == (32, 32, 3)  # the other requests of the batch are rendered

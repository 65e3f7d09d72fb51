"""Bad uploads, limits, rate limits and admin actions: every refusal is a clear 4xx and changes nothing."""

from __future__ import annotations

import io
import os

from PIL import Image

from latentstudio.io.model_dir import save_model

from ..helpers import make_tiny
from .conftest import TOKEN, decode_data_url, png_bytes, wait_for

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def snapshot(client, data_dir):
    files = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file() and "studio.db" not in
                   p.name)
    s = client.app.state.studio.store
    return s.counts(), files


def post_image(client, payload, ctype="image/png"):
    return client.post("/api/drawings", content=payload, headers={"content-type": ctype})


def test_bad_uploads_are_refused_and_change_nothing(make_client, tmp_path):
    data = tmp_path / "data"
    client = make_client(data, upload_max_bytes=200_000, upload_max_pixels=1000 * 1000, upload_burst=100)
    before = snapshot(client, data)
    r = post_image(client, b"<?php echo 'hi'; ?>" * 10)
    assert r.status_code == 415 and "not a PNG" in r.json()["detail"]
    fake = io.BytesIO()
    Image.new("RGB", (8, 8)).save(fake, "PNG")
    r = post_image(client, b"GIF89a" + fake.getvalue(), "image/gif")  # a lie in the magic bytes
    assert r.status_code == 400
    r = post_image(client, png_bytes()[:40])  # a truncated PNG
    assert r.status_code == 400
    big = io.BytesIO()
    Image.new("L", (1200, 1000), 255).save(big, "PNG")  # small file, too many pixels
    assert len(big.getvalue()) < 200_000
    r = post_image(client, big.getvalue())
    assert r.status_code == 413 and "pixels" in r.json()["detail"]
    r = post_image(client, os.urandom(300_000))
    assert r.status_code == 413
    r = post_image(client, b"")
    assert r.status_code == 400
    r = client.post("/api/drawings", files={"wrong": ("a.png", png_bytes(), "image/png")})
    assert r.status_code == 400 and "'file'" in r.json()["detail"]
    assert client.get("/api/drawings/0123456789abcdef").status_code == 404
    assert client.get("/api/drawings/../../etc").status_code in (404, 422)
    assert client.get("/api/jobs/0123456789abcdef").status_code == 404
    assert snapshot(client, data) == before


def test_multipart_upload_is_accepted_and_reencoded(client):
    r = client.post("/api/drawings", files={"file": ("drawing.jpg", png_bytes(), "image/jpeg")})  # name lies
    assert r.status_code == 202
    drawing = r.json()["id"]
    img = client.get(f"/api/drawings/{drawing}/image")
    assert img.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(img.content)).size == (64, 48)


def test_uploads_are_rate_limited_per_client(make_client):
    client = make_client(upload_burst=2, upload_rate=0.01, start_jobs=False)
    assert post_image(client, png_bytes()).status_code == 202
    assert post_image(client, png_bytes()).status_code == 202
    r = post_image(client, png_bytes())
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert client.app.state.studio.store.counts()["drawings"] == 2


def test_generation_is_rate_limited(make_client):
    client = make_client(generate_burst=3, generate_rate=0.01)
    codes = [client.post("/query", json={"z": [0.5] * 32}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_admin_actions_need_the_token(make_client):
    client = make_client()
    drawing = post_image(client, png_bytes()).json()["id"]
    wait_for(lambda: client.get(f"/api/drawings/{drawing}").json()["status"] == "done")
    assert client.delete(f"/api/admin/drawings/{drawing}").status_code == 401
    assert client.delete(f"/api/admin/drawings/{drawing}", headers={"Authorization": "Bearer nope"}).status_code \
        == 403
    assert client.post("/api/admin/wall/clear", headers={"X-Admin-Token": "nope"}).status_code == 403
    assert client.get("/api/gallery").json()["entries"]
    assert client.post("/api/admin/wall/clear", headers=ADMIN).json() == {"removed": 1}
    assert client.get("/api/gallery").json()["entries"] == []
    assert client.get(f"/api/drawings/{drawing}").status_code == 200  # clearing the wall keeps drawings
    assert client.delete(f"/api/admin/drawings/{drawing}", headers=ADMIN).status_code == 200
    assert client.get(f"/api/drawings/{drawing}").status_code == 404
    assert client.delete(f"/api/admin/drawings/{drawing}", headers=ADMIN).status_code == 404


def test_model_switch_only_from_allowed_folders(make_client, tmp_path):
    data = tmp_path / "data"
    client = make_client(data)
    outside = tmp_path / "elsewhere" / "model"
    G, _ = make_tiny(seed=3, resolution=16)
    save_model(outside, G)
    before = client.get("/api/model").json()["model"]
    r = client.post("/api/admin/model", json={"path": str(outside)}, headers=ADMIN)
    assert r.status_code == 403 and "outside the allowed folders" in r.json()["detail"]
    r = client.post("/api/admin/model", json={"path": "../elsewhere/model"}, headers=ADMIN)
    assert r.status_code == 403
    assert client.post("/api/admin/model", json={"path": str(outside)}).status_code == 401
    (data / "models" / "broken").mkdir()
    r = client.post("/api/admin/model", json={"path": "broken"}, headers=ADMIN)
    assert r.status_code == 400
    assert client.get("/api/model").json()["model"] == before
    save_model(data / "models" / "small", G)
    r = client.post("/api/admin/model", json={"path": "small"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["model"]["resolution"] == 16
    img = client.post("/api/generate", json={"seeds": [1]}).json()["images"][0]
    assert decode_data_url(img).shape == (16, 16, 3)


def multipart_body(payload: bytes, boundary: str = "latentstudioboundary") -> tuple[bytes, str]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_chunked_oversize_multipart_is_refused_before_parsing(make_client, tmp_path, monkeypatch):
    import starlette.requests

    data = tmp_path / "data"
    client = make_client(data, upload_max_bytes=100_000, upload_burst=100)
    before = snapshot(client, data)
    parsed = []
    real_form = starlette.requests.Request.form
    monkeypatch.setattr(starlette.requests.Request, "form",
                        lambda self, *a, **k: parsed.append(1) or real_form(self, *a, **k))
    body, ctype = multipart_body(os.urandom(400_000))

    def chunks():  # a generator body goes out chunked, without content-length
        for i in range(0, len(body), 16_384):
            yield body[i:i + 16_384]

    r = client.post("/api/drawings", content=chunks(), headers={"content-type": ctype})
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert parsed == []  # refused on the byte count, before the multipart parser (and its temp files) ran
    assert snapshot(client, data) == before
    small, ctype = multipart_body(png_bytes())
    r = client.post("/api/drawings", content=iter([small[:100], small[100:]]), headers={"content-type": ctype})
    assert r.status_code == 202 and parsed == [1]  # a chunked upload under the limit goes through


def test_json_bodies_are_size_limited(make_client):
    client = make_client(json_max_bytes=50_000)
    big = {"keys": [{"w": [0.12345678912345] * 4000}]}  # ~64 kB of JSON
    r = client.post("/api/generate", json=big)
    assert r.status_code == 413 and "50000" in r.json()["detail"]
    body = b'{"z": [' + b"0.5," * 20_000 + b'0.5]}'
    r = client.post("/query", content=iter([body[i:i + 4096] for i in range(0, len(body), 4096)]),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.headers["access-control-allow-origin"] == "*"
    assert client.post("/query", json={"z": [0.5] * 32}).status_code == 200


def test_event_loop_answers_while_an_upload_is_decoded(make_client, monkeypatch):
    import threading

    from latentstudio.server.routes import drawings

    client = make_client(start_jobs=False)
    started, release, outcome = threading.Event(), threading.Event(), {}
    real = drawings.check_image_upload

    def slow_check(*args):
        started.set()
        outcome["released"] = release.wait(10)  # True only if /api/health answered while we were decoding
        return real(*args)

    monkeypatch.setattr(drawings, "check_image_upload", slow_check)
    upload = threading.Thread(target=lambda: outcome.update(r=post_image(client, png_bytes())))
    upload.start()
    assert started.wait(10)
    assert client.get("/api/health").json()["ok"]
    release.set()
    upload.join(20)
    assert outcome["released"] and outcome["r"].status_code == 202


def test_a_model_switch_survives_a_restart_while_its_folder_stays_allowed(make_client, tmp_path):
    data, extra = tmp_path / "data", tmp_path / "extra"
    G, _ = make_tiny(seed=3, resolution=16)
    save_model(data / "models" / "small", G)
    save_model(extra / "other", make_tiny(seed=4, resolution=64)[0])
    first = make_client(data)
    assert first.post("/api/admin/model", json={"path": "small"}, headers=ADMIN).status_code == 200
    first.__exit__(None, None, None)
    second = make_client(data, allowed_model_dirs=(str(extra),))
    assert second.get("/api/model").json()["model"]["resolution"] == 16  # still the switched model
    assert second.post("/api/admin/model", json={"path": str(extra / "other")}, headers=ADMIN).status_code == 200
    second.__exit__(None, None, None)
    third = make_client(data)  # started without --allow-models extra: that switch is not honoured
    assert third.get("/api/model").json()["model"]["resolution"] == 32


def test_model_switch_refuses_a_symlink_out_of_the_allowed_folder(make_client, tmp_path):
    data = tmp_path / "data"
    client = make_client(data)
    outside = tmp_path / "elsewhere" / "model"
    save_model(outside, make_tiny(seed=3, resolution=16)[0])
    (data / "models" / "link").symlink_to(outside, target_is_directory=True)
    r = client.post("/api/admin/model", json={"path": "link"}, headers=ADMIN)
    assert r.status_code == 403 and "outside the allowed folders" in r.json()["detail"]
    assert client.get("/api/model").json()["model"]["resolution"] == 32
    assert client.app.state.studio.store.get_setting("model") is None


def frames_until(ws, size: int, limit: int = 600) -> list:
    """Read a stream until a JPEG frame of size x size arrives (the socket must stay open); its JSON messages."""
    import json

    texts = []
    for _ in range(limit):
        msg = ws.receive()
        assert msg["type"] == "websocket.send", f"the stream closed: {msg}"
        if msg.get("text") is not None:
            texts.append(json.loads(msg["text"]))
        elif Image.open(io.BytesIO(msg["bytes"])).size == (size, size):
            return texts
    raise AssertionError(f"no {size} px frame in {limit} messages")


def test_a_switch_to_another_architecture_keeps_the_wall_previews_and_queries_going(make_client, tmp_path):
    from .conftest import tiny_loaded

    data = tmp_path / "data"
    client = make_client(data, wall_fps=10)
    drawing = post_image(client, png_bytes()).json()["id"]
    wait_for(lambda: client.get(f"/api/drawings/{drawing}").json()["status"] == "done")
    save_model(data / "models" / "wide", tiny_loaded(seed=1, w_dim=128).G)  # 16 px, w_dim 128 (the tiny: 32, 32)
    with client.websocket_connect("/api/wall/ws") as wall, client.websocket_connect("/api/walk/ws") as walk:
        assert wall.receive_json()["type"] == "hello"
        walk.send_json({"keys": [{"seed": 1}, {"seed": 2}], "mode": "loop", "frames": 4, "fps": 10})
        assert walk.receive_json()["type"] == "walk"
        frames_until(wall, 32)
        frames_until(walk, 32)
        assert client.get("/api/wall").json()["members"] == [drawing]
        r = client.post("/api/admin/model", json={"path": "wide"}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["model"]["w_dim"] == 128
        for _ in range(3):  # other clients' requests are not failed by the preview's latents of the old model
            q = client.post("/query", json={"z": [0.5] * 512})
            assert q.status_code == 200 and decode_data_url(q.json()["image"]).shape == (16, 16, 3)
        info = client.get("/api/wall").json()
        assert info["members"][0].startswith("seed") and info["intro"] is False  # the old latent is skipped
        texts = frames_until(walk, 16)  # the preview is built again on the new model ...
        assert [t["type"] for t in texts] == ["walk"]
        texts = frames_until(wall, 16)  # ... and the wall shows the new model, its socket never closed
        assert all(t["type"] == "wall" for t in texts)
        frames_until(wall, 16)


def test_image_urls_and_etags_name_the_model_so_a_switch_shows_at_once(make_client, tmp_path):
    from .conftest import tiny_loaded

    data = tmp_path / "data"
    client = make_client(data)
    tag = client.get("/api/model").json()["model"]["tag"]
    assert client.get("/api/gallery").json()["model"] == tag
    named = client.get("/api/image", params={"seed": 3, "model": tag})
    assert named.headers["cache-control"] == "max-age=3600" and tag in named.headers["etag"]
    plain = client.get("/api/image", params={"seed": 3})
    assert plain.headers["cache-control"] == "no-cache" and plain.headers["etag"] == named.headers["etag"]
    etag = plain.headers["etag"]
    again = client.get("/api/image", params={"seed": 3}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""  # checked again without rendering
    save_model(data / "models" / "wide", tiny_loaded(seed=1, w_dim=128).G)
    assert client.post("/api/admin/model", json={"path": "wide"}, headers=ADMIN).status_code == 200
    new_tag = client.get("/api/model").json()["model"]["tag"]
    assert new_tag != tag and client.get("/api/gallery").json()["model"] == new_tag  # the Studio polls this
    after = client.get("/api/image", params={"seed": 3}, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert Image.open(io.BytesIO(after.content)).size == (16, 16)
    stale = client.get("/api/image", params={"seed": 3, "model": tag})  # a URL of the old model: not cached
    assert stale.headers["cache-control"] == "no-cache"

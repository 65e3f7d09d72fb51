"""Bad uploads, limits, rate limits and admin actions: every refusal is a clear 4xx and changes nothing."""

from __future__ import annotations

import io
import os

from PIL import Image

from latentstudio.io.model_dir import save_model

from ..helpers import make_tiny
from .conftest import TOKEN, png_bytes, wait_for

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
    from .conftest import decode_data_url

    assert decode_data_url(img).shape == (16, 16, 3)

"""A restart loses nothing: drawings, latents, the gallery and pending jobs survive and jobs resume."""

from __future__ import annotations

import numpy as np

from .conftest import decode_data_url, png_bytes, temporary_files, wait_for


def test_restart_keeps_everything_and_resumes_pending_jobs(make_client, tmp_path):
    data = tmp_path / "data"
    first = make_client(data)
    done = first.post("/api/drawings", content=png_bytes(), headers={"content-type": "image/png"}).json()["id"]
    wait_for(lambda: first.get(f"/api/drawings/{done}").json()["status"] == "done")
    latent_before = first.get(f"/api/drawings/{done}/latent", params={"format": "json"}).json()["w"]
    first.__exit__(None, None, None)

    # a server that stops before its job runs (start_jobs=False keeps the job pending)
    second = make_client(data, start_jobs=False)
    pending = second.post("/api/drawings", content=png_bytes(colour="blue"),
                          headers={"content-type": "image/png"}).json()
    assert second.get(f"/api/jobs/{pending['job']}").json()["status"] == "queued"
    second.__exit__(None, None, None)

    third = make_client(data)
    assert third.get(f"/api/drawings/{done}/latent", params={"format": "json"}).json()["w"] == latent_before
    wait_for(lambda: third.get(f"/api/jobs/{pending['job']}").json()["status"] == "done")
    entries = third.get("/api/gallery").json()["entries"]
    assert [e["drawing"] for e in entries] == [done, pending["id"]]
    img = third.post("/api/generate", json={"keys": [{"drawing": done}]}).json()["images"][0]
    assert decode_data_url(img).std() > 1
    assert temporary_files(data) == []  # atomic writes leave no temporary files


def test_projection_moves_the_latent_towards_the_drawing(make_client):
    client = make_client(project_budget_s=1.0)
    drawing = client.post("/api/project", content=png_bytes((32, 32), draw_line=False),
                          headers={"content-type": "image/png"}).json()
    wait_for(lambda: client.get(f"/api/jobs/{drawing['job']}").json()["status"] == "done")
    assert client.get("/api/gallery").json()["entries"] == []  # /api/project does not join the wall
    img = decode_data_url(client.post("/api/generate", json={"keys": [{"drawing": drawing["id"]}],
                                                             "format": "png"}).json()["images"][0])
    seeds = [decode_data_url(u) for u in client.post("/api/generate", json={"seeds": list(range(4)), "format": "png"})
             .json()["images"]]
    white = np.full_like(img, 255).astype(int)
    assert np.abs(img.astype(int) - white).mean() < min(np.abs(s.astype(int) - white).mean() for s in seeds)


def test_a_drawing_deleted_while_it_is_projected_leaves_no_orphans(make_client, tmp_path):
    import threading

    import torch

    data = tmp_path / "data"
    client = make_client(data)
    jobs = client.app.state.studio.jobs
    G = client.app.state.studio.engine.G
    started, release = threading.Event(), threading.Event()

    def slow_projector(drawing, budget_s):
        started.set()
        release.wait(20)
        return torch.zeros(G.num_ws, G.w_dim)

    jobs.projector = lambda: slow_projector
    sent = client.post("/api/drawings", content=png_bytes(), headers={"content-type": "image/png"}).json()
    assert started.wait(20)
    admin = {"Authorization": "Bearer test-admin-token"}
    assert client.delete(f"/api/admin/drawings/{sent['id']}", headers=admin).status_code == 200
    release.set()
    job = wait_for(lambda: (j := client.get(f"/api/jobs/{sent['job']}").json())["status"] == "failed" and j)
    assert "deleted" in job["error"]
    assert client.get("/api/gallery").json()["entries"] == []
    assert client.app.state.studio.store.counts()["gallery"] == 0
    assert not list((data / "latents").iterdir()) and not list((data / "drawings").iterdir())


def test_a_render_job_left_pending_runs_after_a_restart(make_client, tmp_path):
    data = tmp_path / "data"
    first = make_client(data, start_jobs=False)
    job = first.post("/api/render", json={"keys": [{"seed": 1}, {"seed": 2}], "frames": 6, "fps": 10}).json()["job"]
    assert first.get(f"/api/jobs/{job}").json()["status"] == "queued"
    first.__exit__(None, None, None)
    second = make_client(data)
    status = wait_for(lambda: (s := second.get(f"/api/jobs/{job}").json())["status"] in ("done", "failed") and s)
    assert status["status"] == "done" and status["result"]["frames"] == 7
    assert second.get(f"/api/jobs/{job}/video").content[4:8] == b"ftyp"


def test_stopping_the_server_stops_a_render_between_batches_and_requeues_it(make_client, tmp_path):
    import time

    data = tmp_path / "data"
    first = make_client(data)
    spec = {"keys": [{"seed": 1}, {"seed": 2}], "mode": "interpolate", "frames": 1000, "fps": 24}
    job = first.post("/api/render", json=spec).json()["job"]
    wait_for(lambda: first.get(f"/api/jobs/{job}").json()["progress"] > 0)
    t = time.monotonic()
    first.__exit__(None, None, None)  # lifespan shutdown: JobRunner.stop
    assert time.monotonic() - t < 15  # far less than the whole 1001-frame render
    second = make_client(data, start_jobs=False)
    assert second.get(f"/api/jobs/{job}").json()["status"] == "queued"
    assert not (data / "renders" / f"{job}.mp4").exists() and temporary_files(data) == []

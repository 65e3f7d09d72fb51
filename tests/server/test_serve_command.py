"""`latentstudio serve` as a person runs it: prints the page URLs and the admin token, serves, stops cleanly."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from .conftest import free_port


def test_serve_prints_urls_and_token_and_serves(tiny_model_dir, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "latentstudio.cli", "serve", str(tiny_model_dir), "--data",
                             str(tmp_path / "data"), "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not lines or "admin token" not in lines[-1]:
            lines.append(proc.stdout.readline())
            assert lines[-1], "serve exited before printing the admin token"
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/studio" in text and f"http://127.0.0.1:{port}/wall" in text
        token = next(line.split(":", 1)[1].strip() for line in lines if "admin token" in line)
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while True:
            try:
                info = httpx.get(base + "/info", timeout=2).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < end and proc.poll() is None
                time.sleep(0.2)
        assert info["inputs"][0]["length"] == 32
        assert httpx.get(base + "/api/admin/check", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(base + "/docs").status_code == 200
        record = (tmp_path / "data" / "serve.json").read_text()
        assert token not in record  # the run record never holds the token
    finally:
        proc.terminate()
        assert proc.wait(30) is not None


@pytest.mark.parametrize("args, message", [(["/no/such/model"], "no such model directory"),
                                           (["--port", "70000"], "--port 70000")])
def test_serve_refuses_bad_arguments_with_one_line(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "latentstudio.cli", "serve", *args, "--data", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_serve_binds_loopback_by_default(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import uvicorn

    from latentstudio import cli

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # run() sets it; keep the test process as it was
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs, app=app))
    assert cli.main(["serve", str(tiny_model_dir), "--data", str(tmp_path / "data")]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8000/wall" in out and "bound to a network address" not in out
    seen.clear()
    assert cli.main(["serve", str(tiny_model_dir), "--data", str(tmp_path / "data"), "--host", "0.0.0.0"]) == 0
    assert seen["host"] == "0.0.0.0" and "bound to a network address" in capsys.readouterr().out


def test_docs_and_openapi_are_served(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower() and "/openapi.json" in r.text
    spec = client.get("/openapi.json").json()
    assert {"/query", "/info", "/api/generate", "/api/drawings", "/api/render"} <= set(spec["paths"])


def test_serve_without_the_default_model_stops_with_one_line(tmp_path, monkeypatch, capsys):
    import uvicorn

    from latentstudio import cli
    from latentstudio.io import registry

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # run() sets it; keep the test process as it was
    monkeypatch.setattr(registry, "default_model_path", lambda: tmp_path / "no-default-model")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: pytest.fail("the server started"))
    assert cli.main(["serve", "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "default model is not installed" in err, err
    assert not (tmp_path / "data").exists()  # refused before anything was written

"""Fixtures for the server tests: a studio app on a tiny in-process model with its own data folder."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from latentstudio.io.model_dir import LoadedModel, ModelConfig  # noqa: E402
from latentstudio.server.app import create_app  # noqa: E402
from latentstudio.server.config import ServeConfig  # noqa: E402

from ..helpers import make_tiny  # noqa: E402

TOKEN = "test-admin-token"


def tiny_loaded(seed: int = 0, w_dim: int | None = None) -> LoadedModel:
    """The tiny test model (w_dim 32); `w_dim` builds one with wider latents (z_dim = w_dim), untrained."""
    if w_dim is None:
        G, _ = make_tiny(seed)
    else:
        from latentstudio.models import Generator, get_preset

        torch.manual_seed(seed)
        gcfg = get_preset("tiny", resolution=16).generator
        G = Generator(gcfg.replace(z_dim=w_dim, w_dim=w_dim)).eval()
    G.requires_grad_(False)
    return LoadedModel(path="tiny", config=ModelConfig(generator=G.config), provenance={"source": "tests"}, G=G)


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_loaded()


def make_config(data_dir, **changes) -> ServeConfig:
    base = dict(data_dir=str(data_dir), project_budget_s=0.3, project_loss="pixel", admin_token=TOKEN, threads=1,
                wall_stop_frames=4, wall_morph_frames=6, wall_intro_frames=4, wall_loop_stops=3)
    base.update(changes)
    return ServeConfig(**base)


@pytest.fixture
def make_client(tmp_path, tiny_model):
    """make_client(**config changes) -> a started TestClient (closed at the end of the test)."""
    clients = []

    def make(data_dir=None, model=None, **changes):
        client = TestClient(create_app(make_config(data_dir or tmp_path / "data", **changes), model or tiny_model))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def decode_data_url(url: str) -> np.ndarray:
    head, payload = url.split(",", 1)
    assert head in ("data:image/jpeg;base64", "data:image/png;base64")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"))


def png_bytes(size=(64, 48), colour="red", draw_line=True) -> bytes:
    img = Image.new("RGB", size, "white")
    if draw_line:
        from PIL import ImageDraw

        ImageDraw.Draw(img).line((0, 0, size[0], size[1]), fill=colour, width=4)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def wait_for(fn, timeout=20.0, step=0.05):
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def temporary_files(data_dir) -> list:
    """Files an interrupted atomic write would leave: every writer in latentstudio writes to a dot-file next to
    the target (`.NAME.PID.tmp` here, mkstemp's `.NAME.XXXXXX` for latents, `.NAME.partial.mp4` for videos)."""
    from pathlib import Path

    return sorted(p for p in Path(data_dir).rglob("*") if p.is_file() and (p.name.startswith(".") or
                                                                         ".tmp" in p.name or ".partial" in p.name))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

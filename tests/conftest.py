"""Shared fixtures: tiny networks built in-process (no downloads, a few thousand parameters)."""

from __future__ import annotations

import pytest

from latentstudio.io.model_dir import save_model

from .helpers import make_tiny


@pytest.fixture(scope="session")
def tiny_nets():
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_nets):
    G, D = tiny_nets
    path = tmp_path_factory.mktemp("models") / "tiny"
    save_model(path, G, D=D, provenance={"source": "tests"})
    return path

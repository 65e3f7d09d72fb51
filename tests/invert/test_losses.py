"""Loss specs, per-image losses, PSNR and SSIM."""

import math

import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.invert import build_loss, psnr, ssim
from latentstudio.invert.losses import parse_loss_spec

from ..features.vgg_fixtures import tiny_convs, write_torchvision


def _images(n=3, seed=0, size=32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_parse_loss_spec():
    assert parse_loss_spec("vgg+pixel") == [(1.0, "vgg"), (1.0, "pixel")]
    assert parse_loss_spec("vgg + 0.25*multiscale") == [(1.0, "vgg"), (0.25, "multiscale")]
    for bad in ("lpips", "vgg+vgg", "2*", "vgg++pixel"):
        with pytest.raises(UserError, match="--loss"):
            parse_loss_spec(bad)


@pytest.mark.parametrize("spec", ["pixel", "multiscale", "vgg+0.5*pixel"])
def test_losses_are_per_image_and_zero_at_the_target(tmp_path, spec):
    path = write_torchvision(tmp_path / "v.pth", tiny_convs())
    loss = build_loss(spec, features=[path])
    a, b = _images(3, 0), _images(3, 1)
    feats = loss.target_features(b)
    batch = loss(a, feats)
    singles = torch.cat([loss(a[i:i + 1], loss.select(feats, slice(i, i + 1))) for i in range(3)])
    torch.testing.assert_close(batch, singles, rtol=1e-4, atol=1e-6)
    assert torch.all(batch > 0) and torch.all(loss(b, feats).abs() < 1e-6)


def test_pixel_and_multiscale_values():
    a = torch.zeros(1, 3, 32, 32)
    b = torch.full((1, 3, 32, 32), 0.5)
    pixel = build_loss("pixel")
    assert math.isclose(float(pixel(a, pixel.target_features(b))), 0.25)
    ms = build_loss("multiscale")
    assert math.isclose(float(ms(a, ms.target_features(b))), 0.25 * 3)  # 32, 16 and 8 px


def test_psnr_and_ssim():
    a = _images(2, 0)
    assert torch.all(psnr(a, a) > 100) and torch.allclose(ssim(a, a), torch.ones(2))
    b = a + 0.2  # error 0.1 in [0, 1] units -> 20 dB
    torch.testing.assert_close(psnr(a, b), torch.full((2,), 20.0))
    noisy = a + 0.3 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1))
    s = ssim(a, noisy)
    assert torch.all(s < 0.9) and torch.all(s > -1)
    torch.testing.assert_close(s, ssim(noisy, a))
    assert ssim(a[:, :, :4, :4], a[:, :, :4, :4]).shape == (2,)  # images smaller than the window

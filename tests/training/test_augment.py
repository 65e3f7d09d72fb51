"""The ADA pipeline and DiffAugment: identity at p=0, lossless integer moves, correct resampling geometry,
differentiability (twice, for R1), invariance in expectation, and no augmentation of generated images."""

import math

import torch

from latentstudio.training.augment import AugmentPipe, affine_resample, translate2d
from latentstudio.training.diffaugment import DiffAugment, cutout, translation

from .helpers import blob_images


def images(n=4, res=16, channels=3, seed=0):
    return torch.from_numpy(blob_images(n, res, channels, seed)).float() / 127.5 - 1


def only(*names, p=1.0):
    zero = dict.fromkeys(["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness",
                          "contrast", "lumaflip", "hue", "saturation"], 0)
    zero.update(dict.fromkeys(names, 1))
    return AugmentPipe("bgc", p=p, **zero)


def test_p_zero_is_exact_identity():
    x = images(8)
    torch.manual_seed(0)
    assert torch.equal(AugmentPipe("bgc", p=0.0)(x), x)


def test_untouched_images_pass_through_exactly():
    x = images(64, res=8)
    torch.manual_seed(1)
    y = AugmentPipe("bgc", p=0.05)(x)
    same = (y == x).flatten(1).all(dim=1)
    # About (1 - 0.05)^12 of the images draw no op at all; each of those must be bit-identical.
    assert 0 < int(same.sum()) < 64


def test_flips_and_quarter_turns_are_lossless():
    x = images(32, res=16)
    torch.manual_seed(2)
    y = only("xflip", "rotate90")(x)
    for xi, yi in zip(x, y, strict=True):
        candidates = [torch.rot90(v, k, dims=(1, 2)) for v in (xi, xi.flip(2)) for k in range(4)]
        assert any(torch.equal(yi, c) for c in candidates)


def test_integer_translation_moves_pixels_exactly():
    x = images(16, res=16)
    torch.manual_seed(3)
    y = only("xint")(x)
    found_shift = False
    for xi, yi in zip(x, y, strict=True):
        ok = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if torch.equal(yi[:, 3:-3, 3:-3], torch.roll(xi, (dy, dx), dims=(1, 2))[:, 3:-3, 3:-3]):
                    ok, found_shift = True, found_shift or (dx, dy) != (0, 0)
        assert ok
    assert found_shift


def test_fractional_translation_matches_the_shifted_signal():
    """Resampling geometry: a smooth periodic pattern shifted by a non-integer amount equals the pattern
    evaluated at the shifted positions (away from the mirrored borders)."""
    res = 32
    c = torch.arange(res, dtype=torch.float64) + 0.5

    def pattern(sx, sy):
        xx, yy = torch.meshgrid(c - sx, c - sy, indexing="xy")
        return (0.6 * torch.cos(2 * math.pi * 2 * xx / res) * torch.sin(2 * math.pi * 1.5 * yy / res + 0.3))

    x = pattern(0, 0)[None, None]
    t = torch.tensor([2.5, -1.25], dtype=torch.float64)
    g_inv = translate2d(-t[:1], -t[1:])  # output position o samples the input at o - t
    pipe = AugmentPipe("bgc")
    y = affine_resample(x, g_inv, pipe.filter.double())
    expected = pattern(2.5, -1.25)
    err = (y[0, 0] - expected)[6:-6, 6:-6].abs().max()
    assert err < 0.01, err


def test_rotation_resampling_matches_exact_quarter_turn():
    x = images(2, res=32)
    x = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, [2] * 4, mode="reflect"), 5, 1)  # smooth
    pipe = AugmentPipe("bgc")
    rot = torch.tensor([[[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]).repeat(2, 1, 1)
    y = pipe._resample(x, rot)  # force the general path
    exact = pipe.apply_geometric(x, rot)  # lossless path
    assert (y - exact)[..., 4:-4, 4:-4].abs().max() < 0.05


def test_constant_image_stays_constant_under_any_geometry():
    """Reflect padding + unit-gain filters: nothing dark leaks in from outside the image."""
    x = torch.full([16, 3, 16, 16], 0.37)
    torch.manual_seed(4)
    y = AugmentPipe("bg", p=1.0)(x)
    assert (y - 0.37).abs().max() < 1e-3


def test_pipeline_is_differentiable_twice():
    torch.manual_seed(5)
    x = (torch.rand(2, 3, 8, 8, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    pipe = AugmentPipe("bgc", p=1.0)

    def f(inp):
        torch.manual_seed(6)  # the same random augmentation on every call
        return pipe(inp)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    assert torch.autograd.gradgradcheck(f, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_brightness_is_unbiased():
    x = images(1, res=8).repeat(4000, 1, 1, 1)
    torch.manual_seed(7)
    y = only("brightness")(x)
    assert (y.mean(0) - x[0]).abs().max() < 0.02
    assert y.std(0).mean() > 0.15  # it did change the images


def test_xflip_mean_is_the_symmetrised_image():
    x = images(1, res=8).repeat(4000, 1, 1, 1)
    torch.manual_seed(8)
    y = only("xflip")(x)
    sym = (x[0] + x[0].flip(2)) / 2
    assert (y.mean(0) - sym).abs().max() < 0.03
    assert not torch.allclose(sym, x[0])


def test_hue_rotation_averages_to_grey_of_same_luma():
    color = torch.tensor([0.6, -0.2, 0.1]).reshape(1, 3, 1, 1).repeat(4000, 1, 2, 2)
    torch.manual_seed(9)
    y = only("hue")(color)
    mean = y.mean(dim=(0, 2, 3))
    assert (mean - color[0, :, 0, 0].mean()).abs().max() < 0.02
    # Each rotated colour keeps its distance from the grey axis (hue changes, saturation does not).
    dev = (y - y.mean(dim=1, keepdim=True)).square().sum(dim=1).sqrt()
    ref = (color - color.mean(dim=1, keepdim=True)).square().sum(dim=1).sqrt()
    assert torch.allclose(dev, ref, atol=1e-5)


def test_probability_controls_how_often_an_op_fires():
    x = images(1, res=8).repeat(4000, 1, 1, 1)
    torch.manual_seed(10)
    y = only("xflip", p=0.5)(x)
    flipped = (y != x).flatten(1).any(dim=1).float().mean()
    assert abs(float(flipped) - 0.25) < 0.03  # fires with p = 0.5, and then flips half the time


def test_grayscale_images():
    x = images(4, channels=1)
    torch.manual_seed(11)
    y = AugmentPipe("bgc", p=1.0)(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_diffaugment_shapes_gradients_and_cutout_area():
    x = images(64, res=16).requires_grad_(True)
    torch.manual_seed(12)
    y = DiffAugment()(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad.abs().sum() > 0
    ones = torch.ones(2000, 1, 16, 16)
    holes = 1 - cutout(ones).mean()
    assert abs(float(holes) - 0.25 * 0.75) < 0.05  # an 8x8 square, partly outside the image on average
    shifted = translation(ones)
    assert shifted.min() == 0 and shifted.max() == 1


def test_generated_images_are_never_augmented():
    """Only what goes into D is augmented: G's output (what people see) is the raw synthesis result."""
    from latentstudio.training.config import LossConfig
    from latentstudio.training.loss import StyleGAN2Loss

    from ..helpers import make_tiny

    G, D = make_tiny(resolution=16)
    G.train()
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, img):
            seen.append(img)
            return img + 100  # a mark that must never show up in generated images

    loss = StyleGAN2Loss(G, D, LossConfig(r1_gamma=1.0), augment=Spy())
    torch.manual_seed(13)
    z = torch.randn(4, G.z_dim)
    img, _ = loss.run_G(z, None)
    assert img.abs().max() < 50 and not seen
    loss.generator_main(z, None, 1.0)
    assert len(seen) == 1
    loss.discriminator_main(images(4, res=16), None, z, None, 1.0)
    loss.discriminator_r1(images(4, res=16), None, 1.0)
    assert len(seen) == 4  # fakes for G, fakes + reals for D, reals for R1
    loss.generator_pl(z, None, 1.0)
    assert len(seen) == 4  # path length never involves D


def test_separable_resampling_matches_the_2d_reference():
    from latentstudio.models import ops
    from latentstudio.training.augment import downsample2x, lanczos_taps, upsample2x

    f = lanczos_taps(3).double()
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    f2 = torch.outer(f, f)
    up = upsample2x(x, f)
    assert torch.allclose(up, ops.upsample2d(x, f2), atol=1e-12)
    assert torch.allclose(downsample2x(up, f), ops.downsample2d(up, f2), atol=1e-12)

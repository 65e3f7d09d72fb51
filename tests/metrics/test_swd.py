"""SWD: pyramid maths, the sliced Wasserstein estimate, and behaviour on image sets."""

import torch

from latentstudio.metrics.swd import (
    finalize,
    image_descriptors,
    laplacian_pyramid,
    levels_for,
    pyr_up,
    sliced_wasserstein,
    swd,
    swd_from_descriptors,
)


def smooth_images(n, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 8, size // 8, generator=g) * 255
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return (x + torch.randn(x.shape, generator=g) * 8).clamp(0, 255).to(torch.uint8)


def test_pyramid_reconstructs_the_image():
    x = torch.rand(2, 3, 64, 64) * 255
    levels = laplacian_pyramid(x, 3)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = band + pyr_up(rebuilt)
    assert torch.allclose(rebuilt, x, atol=1e-3)
    assert levels_for(128) == [128, 64, 32, 16] and levels_for(8) == [8]


def test_sliced_wasserstein_of_a_shift_is_the_mean_projected_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 6, generator=g)
    v = torch.tensor([1.0, -2.0, 0.5, 0.0, 0.0, 3.0])
    got = sliced_wasserstein(a, a + v, torch.Generator().manual_seed(7), repeats=2, dirs_per_repeat=16)
    dirs_gen = torch.Generator().manual_seed(7)
    expect = []
    for _ in range(2):
        d = torch.randn(6, 16, generator=dirs_gen)
        expect.append((v @ (d / d.norm(dim=0))).abs().mean())
    assert abs(got - float(torch.stack(expect).mean())) < 1e-5
    assert sliced_wasserstein(a, a, torch.Generator().manual_seed(1)) == 0.0


def test_swd_near_zero_for_the_same_set_and_grows_with_distortion():
    real = smooth_images(24)
    same = swd(real, real, seed=3)  # different random patches on each side: a small sampling floor
    assert set(same) == {"swd_32", "swd_16", "swd"}
    blurred = [swd(real, torch.nn.functional.avg_pool2d(real.float(), k, 1, k // 2, count_include_pad=False)
                   .to(torch.uint8), seed=3)["swd"] for k in (3, 9)]
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(1)) * 255
    mixed = swd(real, (0.5 * real.float() + 0.5 * noise).to(torch.uint8), seed=3)["swd"]
    assert same["swd"] * 1.5 < blurred[0] < blurred[1] and mixed > same["swd"] * 1.5


def test_identical_descriptors_give_exactly_zero():
    real = smooth_images(8)
    desc = [finalize([d]) for d in image_descriptors(real, 2, torch.Generator().manual_seed(0))]
    assert desc[0].shape == (8 * 128, 7 * 7 * 3)
    out = swd_from_descriptors(desc, desc, [32, 16])
    assert out == {"swd_32": 0.0, "swd_16": 0.0, "swd": 0.0}

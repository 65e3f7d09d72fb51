"""Image similarity numbers for projection reports: PSNR and SSIM on images in [-1, 1], per image."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, with pixel values mapped to [0, 1]."""
    mse = ((a.to(torch.float32) - b.to(torch.float32)) / 2).square().mean(dim=[1, 2, 3])
    return 10 * torch.log10(1 / mse.clamp_min(1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004, Gaussian window, valid region) per image, channels averaged,
    with pixel values mapped to [0, 1]. The window shrinks for images smaller than it."""
    x = (a.to(torch.float32) + 1) / 2
    y = (b.to(torch.float32) + 1) / 2
    size = min(window, x.shape[-1], x.shape[-2])
    g = _gaussian_window(size, sigma * size / window).to(x.device)
    c = x.shape[1]

    def blur(t):
        t = F.conv2d(t, g.reshape(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        return F.conv2d(t, g.reshape(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx.square()
    syy = blur(y * y) - my.square()
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx.square() + my.square() + c1) * (sxx + syy + c2))
    return s.mean(dim=[1, 2, 3])

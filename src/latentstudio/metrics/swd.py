"""Sliced Wasserstein distance over Laplacian-pyramid patches (Karras et al. 2018, "Progressive Growing of
GANs", section 5 and appendix D).

Each image is split into a Laplacian pyramid from full resolution down to 16x16; from every level 128 random
7x7 neighbourhoods per image become descriptors (7*7*C numbers), normalised per channel over the whole set;
the SWD between the real and generated descriptor sets is the mean, over 512 random unit directions, of the
1-D Wasserstein-1 distance of the projections (sorted and compared). Reported per level x 1e3, and averaged.
Low levels compare coarse structure, high levels fine detail.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

NHOOD = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS, DIRS_PER_REPEAT = 4, 128
MIN_RESOLUTION = 16


def _kernel(channels: int, device) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device)
    k = torch.outer(k, k) / 256
    return k.expand(channels, 1, 5, 5).contiguous()


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur (5-tap binomial, mirrored edges), then keep every other pixel."""
    y = F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), _kernel(x.shape[1], x.device), groups=x.shape[1])
    return y[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Zero-insertion upsampling followed by the same blur (x4 to keep brightness)."""
    n, c, h, w = x.shape
    up = torch.zeros(n, c, h * 2, w * 2, dtype=x.dtype, device=x.device)
    up[:, :, ::2, ::2] = x
    return F.conv2d(F.pad(up, [2, 2, 2, 2], mode="reflect"), _kernel(c, x.device) * 4, groups=c)


def levels_for(resolution: int) -> list[int]:
    """Pyramid resolutions, finest first, down to 16 (or the single full level for smaller images)."""
    out, res = [], resolution
    while res >= MIN_RESOLUTION:
        out.append(res)
        res //= 2
    return out or [resolution]


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels (finest first) and the low-pass remainder as the last level."""
    levels, x = [], images
    for _ in range(num_levels - 1):
        low = pyr_down(x)
        levels.append(x - pyr_up(low))
        x = low
    levels.append(x)
    return levels


def patch_descriptors(level: torch.Tensor, per_image: int, generator: torch.Generator) -> torch.Tensor:
    """`per_image` random 7x7 neighbourhoods from every image: [N * per_image, C, 7, 7]."""
    n, c, h, w = level.shape
    ys = torch.randint(0, h - NHOOD + 1, (n, per_image), generator=generator).to(level.device)
    xs = torch.randint(0, w - NHOOD + 1, (n, per_image), generator=generator).to(level.device)
    off = torch.arange(NHOOD, device=level.device)
    rows = (ys[:, :, None] + off)[:, :, :, None].expand(n, per_image, NHOOD, NHOOD)
    cols = (xs[:, :, None] + off)[:, :, None, :].expand(n, per_image, NHOOD, NHOOD)
    img = torch.arange(n, device=level.device)[:, None, None, None].expand_as(rows)
    patches = level.permute(0, 2, 3, 1)[img, rows, cols]          # [N, P, 7, 7, C]
    return patches.permute(0, 1, 4, 2, 3).reshape(n * per_image, c, NHOOD, NHOOD)


def image_descriptors(images_uint8: torch.Tensor, num_levels: int, generator: torch.Generator,
                      per_image: int = NHOODS_PER_IMAGE) -> list[torch.Tensor]:
    """Descriptors per pyramid level for a batch of uint8 images (not yet normalised)."""
    x = images_uint8.to(torch.float32)
    return [patch_descriptors(level, per_image, generator) for level in laplacian_pyramid(x, num_levels)]


def finalize(descriptors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate batches, normalise each channel to zero mean and unit variance, flatten to [M, 7*7*C]."""
    d = torch.cat(descriptors).to(torch.float32)
    d = d - d.mean(dim=(0, 2, 3), keepdim=True)
    d = d / d.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return d.reshape(d.shape[0], -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator,
                       repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT) -> float:
    """Mean 1-D Wasserstein-1 distance between `a` and `b` [M, D] (equal M) along random unit directions."""
    if a.shape != b.shape:
        m = min(a.shape[0], b.shape[0])
        a, b = a[:m], b[:m]
    results = []
    for _ in range(repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=generator).to(a.device)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        pa, pb = _sorted_rows((a @ dirs).T), _sorted_rows((b @ dirs).T)
        results.append((pa - pb).abs().mean())
    return float(torch.stack(results).mean())


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    """Sort each row. On CPU numpy's vectorised sort is about 10x faster than torch.sort (bench/data.py)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.contiguous().numpy(), axis=1))
    return torch.sort(x, dim=1).values


def swd_from_descriptors(real: list[torch.Tensor], fake: list[torch.Tensor], resolutions: list[int],
                         seed: int = 0) -> dict[str, float]:
    """{'swd_<res>': x1e3 per level, 'swd': their mean} from finalised descriptors per level."""
    gen = torch.Generator().manual_seed(seed)
    out = {f"swd_{res}": sliced_wasserstein(r, f, gen) * 1e3 for res, r, f in zip(resolutions, real, fake, strict=True)}
    out["swd"] = sum(out.values()) / len(out)
    return out


def swd(real_images: torch.Tensor, fake_images: torch.Tensor, seed: int = 0, batch: int = 64) -> dict[str, float]:
    """SWD between two uint8 image sets [N, C, H, W] (equal N gives the paper's estimate)."""
    resolutions = levels_for(real_images.shape[-1])
    sets = []
    for images in (real_images, fake_images):
        gen = torch.Generator().manual_seed(seed + len(sets) + 1)
        per_level = [[] for _ in resolutions]
        for i in range(0, images.shape[0], batch):
            for acc, d in zip(per_level, image_descriptors(images[i:i + batch], len(resolutions), gen), strict=True):
                acc.append(d)
        sets.append([finalize(d) for d in per_level])
    return swd_from_descriptors(sets[0], sets[1], resolutions, seed)

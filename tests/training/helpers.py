"""A tiny in-memory dataset with the interface of `latentstudio.data.dataset.ImageDataset`."""

from __future__ import annotations

import numpy as np
import torch


def blob_images(n: int, res: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """n images [n, C, res, res] uint8: a coloured disc of random size and position on a light background."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:res, 0:res] + 0.5
    out = np.empty([n, channels, res, res], np.uint8)
    for i in range(n):
        cx, cy = rng.uniform(0.3, 0.7, 2) * res
        r = rng.uniform(0.15, 0.3) * res
        color = rng.randint(0, 200, channels)
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        for c in range(channels):
            out[i, c] = np.where(inside, color[c], 235)
    return out


class TinyDataset(torch.utils.data.Dataset):
    def __init__(self, n: int = 16, res: int = 32, channels: int = 3, seed: int = 0):
        self.images = blob_images(n, res, channels, seed)
        self.resolution, self.num_channels, self.label_dim, self.mirror = res, channels, 0, False
        self.image_names = [f"blob{seed}-{i}.png" for i in range(n)]
        self.path = f"memory://blobs{seed}"

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i].copy()), torch.zeros([0])

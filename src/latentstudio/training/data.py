"""Training data: a deterministic, resumable order of real images and their conversion to tensors.

The order is a function of (seed, step) only: epoch e is a fixed random permutation seeded by (seed, e), and
step k takes the next `batch` positions of the endless sequence of epochs; rank r of R takes its slice. So a
resumed run reads exactly the images the uninterrupted run would have read, with no sampler state to save.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..errors import UserError


def open_dataset(path, mirror: bool | None = None, use_labels: bool = False):
    """The data engineer's `ImageDataset` (a prepared folder or zip). `mirror=None`: as `prepare --mirror`
    recorded in the dataset's dataset.json."""
    from ..data.dataset import ImageDataset

    return ImageDataset(path, mirror=mirror, use_labels=use_labels)


def dataset_identity(dataset) -> dict:
    """A cheap description that tells one dataset from another (names and shapes, not pixels)."""
    names = getattr(dataset, "image_names", None)
    h = hashlib.sha256(str(len(dataset)).encode())
    if names is not None:
        h.update("\n".join(map(str, names)).encode())
    return {"path": str(getattr(dataset, "path", "")), "images": len(dataset),
            "resolution": int(dataset.resolution), "channels": int(dataset.num_channels),
            "label_dim": int(getattr(dataset, "label_dim", 0)), "names_sha256": h.hexdigest()[:16]}


class DataOrder:
    def __init__(self, size: int, batch: int, seed: int, rank: int = 0, world_size: int = 1):
        if size == 0:
            raise UserError("the dataset is empty")
        self.size, self.batch, self.seed = size, batch, seed
        self.rank, self.world_size = rank, world_size
        self._cache: dict[int, torch.Tensor] = {}

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._cache[epoch] = torch.randperm(self.size, generator=g)
        return self._cache[epoch]

    def indices(self, step: int) -> list[int]:
        """Dataset indices this rank reads at `step`."""
        per_rank = self.batch // self.world_size
        start = step * self.batch + self.rank * per_rank
        out = []
        for pos in range(start, start + per_rank):
            epoch, i = divmod(pos, self.size)
            out.append(int(self.permutation(epoch)[i]))
        return out


class _StepSampler(torch.utils.data.Sampler):
    def __init__(self, order: DataOrder, start_step: int):
        self.order, self.start_step = order, start_step

    def __iter__(self):
        step = self.start_step
        while True:
            yield self.order.indices(step)
            step += 1


def collate(items):
    images = torch.stack([torch.as_tensor(np.asarray(img)) for img, _ in items])
    labels = torch.stack([torch.as_tensor(lab, dtype=torch.float32) for _, lab in items])
    return images, labels


class RealBatches:
    """`get(step)` -> (images float [B, C, H, W] in [-1, 1], labels [B, c_dim] or None) on `device`.
    With workers > 0 a DataLoader reads ahead in the same deterministic order."""

    def __init__(self, dataset, order: DataOrder, device, c_dim: int = 0, workers: int = 0):
        self.dataset, self.order, self.device, self.c_dim, self.workers = dataset, order, device, c_dim, workers
        self._iter = None
        self._next_step = None

    def _load(self, step: int):
        if self.workers == 0:
            return collate([self.dataset[i] for i in self.order.indices(step)])
        if self._iter is None or step != self._next_step:
            loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=_StepSampler(self.order, step),
                                                 num_workers=self.workers, collate_fn=collate,
                                                 pin_memory=self.device.type == "cuda", prefetch_factor=2,
                                                 persistent_workers=False)
            self._iter = iter(loader)
        self._next_step = step + 1
        return next(self._iter)

    def get(self, step: int):
        images, labels = self._load(step)
        images = images.to(self.device, non_blocking=True).to(torch.float32) / 127.5 - 1
        labels = labels.to(self.device) if self.c_dim > 0 else None
        return images, labels

    def random_labels(self, n: int):
        """Labels for generated images: those of random dataset images (None when unconditional)."""
        if self.c_dim == 0:
            return None
        idx = torch.randint(len(self.dataset), [n])
        get = getattr(self.dataset, "get_label", None) or (lambda i: self.dataset[i][1])
        return torch.stack([torch.as_tensor(get(int(i)), dtype=torch.float32) for i in idx]).to(self.device)

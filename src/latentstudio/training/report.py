"""What a run shows people: per-tick statistics, the metrics log, sample grids, the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
import resource
from pathlib import Path

import torch

from ..render.images import make_grid, save_png, tensor_to_pils

METRICS_LOG = "metrics.jsonl"
CURVES = "curves.png"
SAMPLES = "samples"


class TickStats:
    """Running sums of the per-phase statistics since the start of the tick (kept on the device)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, torch.Tensor] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for k, v in stats.items():
            v = v.detach().float()
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0) + 1
            self.last[k] = v

    def means(self, all_mean=None) -> dict[str, float]:
        out = {}
        for k in sorted(self.sums):
            v = self.sums[k] / self.counts[k]
            out[k] = float(all_mean(v) if all_mean is not None else v)
        return out

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_count"] = torch.cuda.device_count()
    return info


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


@torch.no_grad()
def sample_grid(G, num: int, cols: int = 8):
    """Images of G for seeds 0 .. num-1 (NVIDIA seed semantics, const noise, no truncation), as one grid.
    Conditional models cycle through the classes."""
    from ..latent.seeds import z_from_seeds

    seeds = list(range(num))
    z = z_from_seeds(seeds, G.z_dim, G.device)
    c = None
    if G.c_dim > 0:
        c = torch.nn.functional.one_hot(torch.arange(num) % G.c_dim, G.c_dim).float().to(G.device)
    images = []
    for i in range(0, num, 16):
        ws = G.mapping(z[i:i + 16], c[i:i + 16] if c is not None else None)
        images.extend(tensor_to_pils(G.synthesis(ws, noise_mode="const")))
    return make_grid(images, cols=min(cols, num))


def reals_grid(dataset, num: int = 32, cols: int = 8):
    n = min(num, len(dataset))
    images = torch.stack([torch.as_tensor(dataset[i][0]) for i in range(n)]).float() / 127.5 - 1
    return make_grid(tensor_to_pils(images), cols=min(cols, n))


def save_grid_atomic(image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    save_png(image, tmp)
    tmp.replace(path)

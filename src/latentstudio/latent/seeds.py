"""Seeds and the latents they stand for.

A seed means the same image as in NVIDIA's tools: z = numpy RandomState(seed).randn(1, z_dim).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from ..errors import UserError


def parse_seeds(text: str) -> list[int]:
    """'0-7,12' -> [0, 1, ..., 7, 12]. Ranges are inclusive, as in NVIDIA's generate.py."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise UserError(f"--seeds {text!r}: use numbers and inclusive ranges like 0-7,12")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise UserError(f"--seeds {text!r}: no seeds given")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise UserError(f"--seeds: seed {bad[0]} is outside 0 .. 2**32-1")
    return seeds


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    return np.random.RandomState(seed).randn(1, z_dim)


def z_from_seeds(seeds, z_dim: int, device="cpu") -> torch.Tensor:
    z = np.concatenate([z_from_seed(s, z_dim) for s in seeds])
    return torch.from_numpy(z).to(device=device, dtype=torch.float32)


def one_hot(class_idx: int | None, c_dim: int, n: int = 1, device="cpu") -> torch.Tensor | None:
    """Class labels for a conditional model; None for unconditional ones."""
    if c_dim == 0:
        if class_idx is not None:
            raise UserError("--class: this model is unconditional; leave --class out")
        return None
    if class_idx is None:
        raise UserError(f"--class: this model is conditional; pick a class 0..{c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise UserError(f"--class {class_idx}: this model has classes 0..{c_dim - 1}")
    c = torch.zeros([n, c_dim], device=device)
    c[:, class_idx] = 1
    return c

"""Neighbours: latents scattered around a key with Gaussian noise, to pick the best-looking one by eye.

The exhibition added 512-d Gaussian noise to each projected latent to make 100 neighbours. In W one noise
vector is shared by all layers (so a W latent stays a W latent); in W+ every layer gets its own; in Z the
z vector gets it and the neighbours are mapped like any seed.

    latents = sample_neighbours(centre, LatentSpace("w"), count=100, sigma=0.5, seed=0)  # [100, *centre.shape]
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError
from .space import LatentSpace


def sample_neighbours(centre: torch.Tensor, space: LatentSpace, count: int = 100, sigma: float = 0.5,
                      seed: int = 0) -> torch.Tensor:
    """centre + σ·ε for `count` Gaussian ε of the space's noise shape; same seed, same neighbours."""
    if count < 1:
        raise UserError(f"--count {count}: make at least one neighbour")
    if sigma < 0:
        raise UserError(f"--sigma {sigma}: must be 0 or more")
    eps = space.noise(tuple(centre.shape), count, np.random.RandomState(seed))
    return centre[None].float() + sigma * eps


def parse_picks(text: str, count: int) -> list[int]:
    """'37' or '3,37' -> neighbour numbers, each checked against the count."""
    try:
        picks = [int(p) for p in str(text).split(",") if p.strip()]
    except ValueError:
        raise UserError(f"--pick {text!r}: use neighbour numbers from the sheet, e.g. 37 or 3,37") from None
    bad = [p for p in picks if not 0 <= p < count]
    if not picks or bad:
        raise UserError(f"--pick {text!r}: neighbours are numbered 0..{count - 1}")
    return picks

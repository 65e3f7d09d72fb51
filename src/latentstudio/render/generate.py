"""Rendering images for seeds or latents in batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ..latent.seeds import one_hot, z_from_seeds


@torch.no_grad()
def seeds_to_ws(G, seeds: Sequence[int], truncation_psi: float = 1.0, class_idx: int | None = None,
                truncation_cutoff: int | None = None, device=None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] for the given seeds (NVIDIA seed semantics)."""
    device = device or G.device
    z = z_from_seeds(seeds, G.z_dim, device)
    c = one_hot(class_idx, G.c_dim, len(seeds), device)
    return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


@torch.no_grad()
def synthesize(G, ws: torch.Tensor, batch: int = 8, noise_mode: str = "const") -> Iterator[torch.Tensor]:
    """Yield image batches [B, C, H, W] in [-1, 1] for ws [N, num_ws, w_dim], `batch` at a time."""
    for i in range(0, ws.shape[0], batch):
        yield G.synthesis(ws[i:i + batch].to(G.device), noise_mode=noise_mode)

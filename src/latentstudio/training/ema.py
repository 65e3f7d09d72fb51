"""Exponential moving average of the generator's weights (the network people generate with).

The half-life is `ema_kimg` thousand images; with a ramp-up it is at most `ema_rampup` times the images seen
so far, so early in training the average follows the fast-changing weights instead of the random init.
"""

from __future__ import annotations

import torch


def ema_beta(ema_kimg: float, ema_rampup: float | None, nimg: int, batch: int) -> float:
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters; buffers (w_avg, noise) are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b.detach())

"""Model facts for `latentstudio info` and benchmarks: parameter counts and FLOPs per image."""

from __future__ import annotations

import torch


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def synthesis_flops(G, batch: int = 1) -> int:
    """FLOPs (2 x multiply-adds) of convolutions and matrix products for one mapping + synthesis pass,
    per image, as counted by PyTorch's FlopCounterMode on the module's forward pass in NVIDIA's reference
    formulation (impl='ref', unfused modulation), so the number describes the network, not whichever
    fast path happens to run."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(G.parameters()).device
    z = torch.randn([batch, G.z_dim], device=device)
    c = torch.zeros([batch, G.c_dim], device=device) if G.c_dim else None
    counter = FlopCounterMode(display=False)
    with counter:
        _forward(G, z, c)
    return counter.get_total_flops() // batch


def _forward(G, z, c):
    ws = G.mapping(z, c)
    return G.synthesis(ws, noise_mode="const", fused_modconv=False, impl="ref")

"""Helpers for tests: tiny networks built in-process (no downloads, a few thousand parameters)."""

from __future__ import annotations

import torch

from latentstudio.models import Discriminator, Generator, get_preset


def make_tiny(seed: int = 0, resolution: int = 32, img_channels: int = 3, c_dim: int = 0, architecture="skip"):
    """A tiny G and D with non-trivial weights (noise strengths and biases set away from their zero init)."""
    torch.manual_seed(seed)
    preset = get_preset("tiny", resolution=resolution, img_channels=img_channels, c_dim=c_dim)
    gcfg = preset.generator.replace(synthesis=preset.generator.synthesis.replace(architecture=architecture))
    G, D = Generator(gcfg), Discriminator(preset.discriminator)
    with torch.no_grad():
        for name, p in list(G.named_parameters()) + list(D.named_parameters()):
            if name.endswith(("noise_strength", "bias")):
                p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    return G.eval(), D.eval()

"""StyleGAN2 generator (Karras et al. 2020) with the ADA paper's configuration options.

    G = Generator(GeneratorConfig(...))
    ws = G.mapping(z, c, truncation_psi=0.7)          # [N, num_ws, w_dim]
    img = G.synthesis(ws, noise_mode="const")         # [N, C, H, W] in about [-1, 1]

Module and parameter names match NVIDIA's stylegan2-ada-pytorch (`mapping.fc0.weight`,
`synthesis.b64.conv0.affine.bias`, ...) so their weights map one to one.
"""

from __future__ import annotations

import torch

from . import ops
from .config import GeneratorConfig, MappingConfig
from .layers import FullyConnectedLayer
from .synthesis import SynthesisBlock, SynthesisLayer, SynthesisNetwork, ToRGBLayer

__all__ = ["Generator", "MappingNetwork", "SynthesisBlock", "SynthesisLayer", "SynthesisNetwork", "ToRGBLayer",
           "style_mix", "truncate"]


class MappingNetwork(torch.nn.Module):
    """z (+ class embedding) -> w through `num_layers` fully connected layers; tracks the mean w."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, cfg: MappingConfig):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = cfg.num_layers
        self.w_avg_beta = cfg.w_avg_beta
        embed = cfg.embed_features if cfg.embed_features is not None else w_dim
        embed = embed if c_dim > 0 else 0
        hidden = cfg.layer_features if cfg.layer_features is not None else w_dim
        features = [z_dim + embed] + [hidden] * (cfg.num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(cfg.num_layers):
            self.add_module(f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=cfg.activation,
                                                          lr_multiplier=cfg.lr_multiplier))
        if num_ws is not None and cfg.w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=None):
        x = None
        if self.z_dim > 0:
            x = ops.normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this model is conditional: pass c, a one-hot class tensor of size {self.c_dim}")
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        update = self.training if update_w_avg is None else update_w_avg
        if update and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


def truncate(ws, w_avg, psi, cutoff=None):
    """Pull ws towards the mean w: w_avg + psi * (w - w_avg), on the first `cutoff` layers (all if None)."""
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


def style_mix(ws_a, ws_b, crossover: int):
    """Coarse styles (layers < crossover) from ws_a, fine styles from ws_b."""
    out = ws_b.clone()
    out[:, :crossover] = ws_a[:, :crossover]
    return out


class Generator(torch.nn.Module):
    """StyleGAN2 generator: `mapping(z, c, truncation_psi) -> ws`, `synthesis(ws) -> images`."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.synthesis = SynthesisNetwork(config.w_dim, config.img_resolution, config.img_channels,
                                          config.synthesis)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, self.num_ws, config.mapping)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode=None, precision=None):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, precision=precision)

    @property
    def device(self) -> torch.device:
        return self.synthesis.b4.const.device

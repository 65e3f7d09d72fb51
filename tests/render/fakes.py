"""A stand-in generator for render tests: instant, deterministic pictures that depend on ws, so long videos and
threading can be tested without paying for real synthesis."""

from __future__ import annotations

import torch


class FakeMapping:
    def __init__(self, w_dim: int, num_ws: int):
        self.w_dim, self.num_ws = w_dim, num_ws
        self.w_avg = torch.zeros(w_dim)

    def __call__(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        return z[:, None, :self.w_dim].repeat(1, self.num_ws, 1).float()


class FakeG:
    """z_dim = w_dim = 8, 4 ws; synthesis paints a horizontal ramp whose brightness follows mean(ws)."""

    def __init__(self, resolution: int = 32, channels: int = 3, on_synthesis=None):
        self.z_dim = self.w_dim = 8
        self.num_ws, self.c_dim = 4, 0
        self.img_resolution, self.img_channels = resolution, channels
        self.mapping = FakeMapping(self.w_dim, self.num_ws)
        self.device = torch.device("cpu")
        self.calls = 0
        self.on_synthesis = on_synthesis

    def synthesis(self, ws, noise_mode="const"):
        self.calls += 1
        if self.on_synthesis is not None:
            self.on_synthesis(self.calls)
        level = torch.tanh(ws.mean(dim=(1, 2)))[:, None, None, None]
        ramp = torch.linspace(-0.5, 0.5, self.img_resolution)[None, None, None, :]
        return (0.5 * level + ramp).expand(ws.shape[0], self.img_channels, self.img_resolution,
                                           self.img_resolution).contiguous()

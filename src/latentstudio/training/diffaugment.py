"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): a fixed
policy of colour jitter, translation and cutout applied to every image D sees, with no adaptation.

Simpler and cheaper than ADA but it does leak at full strength (cutout holes are never undone), which is
why ADA is the default. Policy names: color, translation, cutout (comma separated).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICY_OPS = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [n for n in names if n not in POLICY_OPS]
    if bad:
        raise ValueError(f"DiffAugment policy {policy!r}: unknown op(s) {bad}; use {', '.join(POLICY_OPS)}")
    return names


def brightness(x):
    return x + (torch.rand([x.shape[0], 1, 1, 1], device=x.device, dtype=x.dtype) - 0.5)


def saturation(x):
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand([x.shape[0], 1, 1, 1], device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x):
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand([x.shape[0], 1, 1, 1], device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x, ratio: float = 0.125):
    """Shift each image by a random whole number of pixels (up to ratio * size), zeros coming in."""
    n, _, h, w = x.shape
    sx, sy = int(w * ratio + 0.5), int(h * ratio + 0.5)
    tx = torch.randint(-sx, sx + 1, [n, 1, 1], device=x.device)
    ty = torch.randint(-sy, sy + 1, [n, 1, 1], device=x.device)
    yy, xx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    src_y = (yy.unsqueeze(0) - ty + 1).clamp(0, h + 1)
    src_x = (xx.unsqueeze(0) - tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # the zero border is what out-of-range positions read
    flat = padded.flatten(2)
    index = (src_y * (w + 2) + src_x).flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1)
    return flat.gather(2, index).reshape(x.shape)


def cutout(x, ratio: float = 0.5):
    """Zero one random square of side ratio * size per image (it may be cut off by the border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    y0 = torch.randint(0, h, [n, 1, 1], device=x.device) - ch // 2  # centre anywhere in the image
    x0 = torch.randint(0, w, [n, 1, 1], device=x.device) - cw // 2
    yy, xx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    inside = (yy >= y0) & (yy < y0 + ch) & (xx >= x0) & (xx < x0 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


class DiffAugment(torch.nn.Module):
    def __init__(self, policy: str = "color,translation,cutout"):
        super().__init__()
        self.policy = parse_policy(policy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.policy:
            if name == "color":
                x = contrast(saturation(brightness(x)))
            elif name == "translation":
                x = translation(x)
            elif name == "cutout":
                x = cutout(x)
        return x

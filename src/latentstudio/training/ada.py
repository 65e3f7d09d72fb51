"""Adaptive discriminator augmentation: steer the augmentation probability p from D's outputs on reals.

The overfitting heuristic r_t = E[sign(D(real))] is 0 when D cannot tell training images from generated
ones and 1 when it has memorised them. Every `interval` steps p moves by a fixed amount towards whatever
keeps r_t at the target (0.6): up when r_t is above it, down when below. The step is sized so p could go
from 0 to 1 in `speed_kimg` thousand images; NVIDIA's 500 kimg suits multi-day GPU runs, shorter CPU runs
on a few hundred images need it much faster (default 20: on 150 images D overfits within ~10 kimg, and p
must keep up).
"""

from __future__ import annotations

import torch

from .config import AugmentConfig


class AdaController:
    def __init__(self, pipe, cfg: AugmentConfig, batch: int, device):
        self.pipe, self.cfg, self.batch = pipe, cfg, batch
        self.sign_sum = torch.zeros([], dtype=torch.float64, device=device)
        self.sign_count = torch.zeros([], dtype=torch.float64, device=device)
        self.last_rt: float | None = None

    @property
    def adaptive(self) -> bool:
        return self.cfg.fixed_p is None

    def observe(self, real_logits: torch.Tensor) -> None:
        """Record D's raw outputs on (augmented) reals."""
        logits = real_logits.detach()
        self.sign_sum += logits.sign().sum().to(torch.float64)
        self.sign_count += logits.numel()

    def update(self, step: int, all_sum=None) -> None:
        """Call after step `step` (0-based); adjusts p every `interval` steps. `all_sum` sums across ranks."""
        if not self.adaptive or (step + 1) % self.cfg.interval:
            return
        totals = torch.stack([self.sign_sum, self.sign_count])
        if all_sum is not None:
            totals = all_sum(totals)
        if float(totals[1]) == 0:
            return
        rt = float(totals[0] / totals[1])
        adjust = (1 if rt > self.cfg.target else -1 if rt < self.cfg.target else 0) \
            * self.batch * self.cfg.interval / (self.cfg.speed_kimg * 1000)
        self.pipe.p.copy_((self.pipe.p + adjust).clamp(0, 1))
        self.sign_sum.zero_()
        self.sign_count.zero_()
        self.last_rt = rt

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"ada/p": self.pipe.p.detach().cpu().reshape(1), "ada/sign_sum": self.sign_sum.cpu().reshape(1),
                "ada/sign_count": self.sign_count.cpu().reshape(1)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.pipe.p.copy_(tensors["ada/p"].reshape([]))
        self.sign_sum.copy_(tensors["ada/sign_sum"].reshape([]))
        self.sign_count.copy_(tensors["ada/sign_count"].reshape([]))

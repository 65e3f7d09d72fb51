"""StyleGAN2 losses: non-saturating logistic loss, lazy R1 on reals, path-length regularisation, style mixing.

Each method runs the forward passes of one training phase and calls `backward()` with the given gain (the
lazy-regularisation interval, divided by the number of gradient-accumulation rounds). It returns detached
statistics for logging. `augment` (ADA, DiffAugment or None) is applied to every image D sees and never to
what G returns.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import LossConfig


class StyleGAN2Loss:
    def __init__(self, G, D, cfg: LossConfig, augment=None, ada=None, all_mean=None):
        self.G, self.D, self.cfg = G, D, cfg
        self.augment = augment
        self.ada = ada  # observes D's outputs on reals
        self.all_mean = all_mean  # averages a tensor across ranks (None: single process)
        self.pl_mean = torch.zeros([], device=G.device)

    def run_G(self, z, c):
        """Generate images (not augmented) and the ws that made them; mixes styles with probability p."""
        ws = self.G.mapping(z, c)
        if self.cfg.style_mixing_prob > 0:
            cutoff = int(torch.randint(1, ws.shape[1], []))
            if float(torch.rand([])) < self.cfg.style_mixing_prob:
                ws[:, cutoff:] = self.G.mapping(torch.randn_like(z), c, update_w_avg=False)[:, cutoff:]
        return self.G.synthesis(ws, noise_mode="random"), ws

    def run_D(self, img, c):
        if self.augment is not None:
            img = self.augment(img)
        return self.D(img, c)

    def generator_main(self, z, c, gain: float) -> dict:
        img, _ = self.run_G(z, c)
        logits = self.run_D(img, c)
        loss = F.softplus(-logits)  # -log sigmoid(D(G(z)))
        loss.mean().mul(gain).backward()
        return {"loss/G": loss.detach().mean(), "score/fake": logits.detach().mean()}

    def generator_pl(self, z, c, gain: float) -> dict:
        """Path-length regularisation: keep |J_w^T y| (y random images) close to its running mean."""
        n = max(z.shape[0] // self.cfg.pl_batch_shrink, 1)
        img, ws = self.run_G(z[:n], c[:n] if c is not None else None)
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(dim=2).mean(dim=1).sqrt()
        batch_mean = lengths.mean().detach()
        if self.all_mean is not None:
            batch_mean = self.all_mean(batch_mean)
        pl_mean = self.pl_mean.lerp(batch_mean, self.cfg.pl_decay)
        self.pl_mean.copy_(pl_mean)
        penalty = (lengths - pl_mean).square() * self.cfg.pl_weight
        # The zero-weighted image term keeps every synthesis parameter in the graph.
        (img[:, 0, 0, 0] * 0 + penalty).mean().mul(gain).backward()
        return {"loss/pl": penalty.detach().mean(), "pl_mean": pl_mean.detach()}

    def discriminator_main(self, real, c_real, z, c, gain: float) -> dict:
        with torch.no_grad():
            fake, _ = self.run_G(z, c)
        fake_logits = self.run_D(fake, c)
        loss_fake = F.softplus(fake_logits)
        loss_fake.mean().mul(gain).backward()
        real_logits = self.run_D(real, c_real)
        if self.ada is not None:
            self.ada.observe(real_logits)
        loss_real = F.softplus(-real_logits)
        loss_real.mean().mul(gain).backward()
        return {"loss/D": (loss_fake + loss_real).detach().mean(), "score/real": real_logits.detach().mean(),
                "sign/real": real_logits.detach().sign().mean()}

    def discriminator_r1(self, real, c_real, gain: float) -> dict:
        """Lazy R1: gamma/2 * |grad_x D(x)|^2 on (augmented) reals."""
        x = real.detach().requires_grad_(True)
        logits = self.run_D(x, c_real)
        if self.ada is not None:
            self.ada.observe(logits)
        (grads,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
        penalty = grads.square().sum(dim=[1, 2, 3]) * (self.cfg.r1_gamma / 2)
        (logits[:, 0] * 0 + penalty).mean().mul(gain).backward()
        return {"loss/r1": penalty.detach().mean()}

"""The live path: a visitor's drawing gets its latent within a time budget (encoder guess + short refinement).

    live = live_projector_for(open_model(None))   # once: loads the VGG16 and the model's encoder, warms up
    result = live(drawing_pil, budget_s=8.0)      # per drawing
    result.ws  # [1, num_ws, w_dim]; result.image: the rendering (PIL)

The refinement optimises W+ against the model's constant noise (what every other tool renders with), with
the learning-rate schedule run against the clock, and stops before the budget is spent.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from ..device import resolve_device
from ..render.images import tensor_to_pils
from .encoder import default_encoder_dir, load_encoder
from .losses import build_loss
from .metrics import psnr
from .projector import ProjectConfig, WStats, project_images, refine_settings, w_statistics
from .targets import image_to_target

# Short refinements start next to the answer: no exploration noise; the peak learning rate and the short
# ramp-down that did best in 100-step refinements from the encoder (see projector.refine_settings).
LIVE_CONFIG = ProjectConfig(steps=100, space="w+", loss="vgg+pixel", lr=0.05, lr_rampup=0.0, lr_rampdown=0.25,
                            w_noise=0.0, noise="const", perceptual_side=64)


@dataclasses.dataclass
class LiveResult:
    ws: torch.Tensor  # [1, num_ws, w_dim], CPU
    image: object  # PIL image of the projection
    steps: int  # refinement steps that fitted into the budget
    seconds: float
    psnr: float  # of the projection against the (squared, resized) drawing


class LiveProjector:
    """Holds the loss (VGG16) and the encoder so that each call only does the work for one drawing.
    Safe to share between threads that take turns; it never modifies G.

    Without an encoder (encoder=None) every call starts from the mean w with the settings for that start:
    it works, but a few seconds of optimisation get much less far (train one with `train-encoder`)."""

    def __init__(self, G, encoder=None, config: ProjectConfig = LIVE_CONFIG, features=None, vgg=None,
                 device="auto"):
        self.G, self.encoder = G, encoder
        self.device = resolve_device(device)
        self.config = config if encoder is not None else config.replace(**refine_settings(from_mean=True))
        self.loss = build_loss(config.loss, features=features, vgg=vgg, perceptual_side=config.perceptual_side,
                               device=self.device)
        if encoder is not None:
            self.stats = WStats(w_avg=encoder.w_avg.to(self.device), w_std=float(encoder.w_std))
        else:
            self.stats = w_statistics(G, device=self.device)
        self.render_s, self.step_s = self._warm_up()

    def guess(self, target: torch.Tensor) -> torch.Tensor:
        """The start latents [1, num_ws, w_dim]: the encoder's guess, or the mean w."""
        if self.encoder is None:
            return self.stats.w_avg.reshape(1, 1, -1).expand(1, self.G.num_ws, -1)
        with torch.no_grad():
            return self.encoder(target)

    def _warm_up(self) -> tuple[float, float]:
        """Run every kernel once (the first call of a convolution is slow on CPUs) and time one rendering and
        one refinement step, so that calls can plan within their budget."""
        blank = torch.zeros(1, self.G.img_channels, self.G.img_resolution, self.G.img_resolution, device=self.device)
        ws = self.guess(blank)
        with torch.no_grad():
            self.G.synthesis(ws, noise_mode="const")
            t = time.perf_counter()
            self.G.synthesis(ws, noise_mode="const")
            render_s = time.perf_counter() - t
        cfg = self.config.replace(steps=2)
        t = time.perf_counter()
        project_images(self.G, blank, cfg, init_ws=ws, loss=self.loss, w_stats=self.stats, device=self.device,
                       progress=False)
        return render_s, (time.perf_counter() - t) / 2

    def __call__(self, image, budget_s: float = 8.0) -> LiveResult:
        t0 = time.perf_counter()
        target = image_to_target(image, self.G).to(self.device)
        ws = self.guess(target)
        steps = 0
        left = budget_s - (time.perf_counter() - t0) - 2 * self.render_s
        if left > 1.5 * self.step_s:  # room for at least one step
            proj = project_images(self.G, target, self.config, init_ws=ws, loss=self.loss, w_stats=self.stats,
                                  device=self.device, progress=False, time_budget_s=left)
            ws, images, steps = proj.ws, proj.images, proj.steps
        else:
            with torch.no_grad():
                images = self.G.synthesis(ws, noise_mode="const").cpu()
        return LiveResult(ws=ws.cpu(), image=tensor_to_pils(images)[0], steps=steps,
                          seconds=time.perf_counter() - t0, psnr=float(psnr(images, target.cpu())[0]))


def live_project(G, encoder, image, budget_s: float = 8.0, **kwargs) -> LiveResult:
    """One-off live projection (builds a LiveProjector; keep one around when projecting many drawings)."""
    return LiveProjector(G, encoder, **kwargs)(image, budget_s=budget_s)


def live_projector_for(model, device="auto", **kwargs) -> LiveProjector:
    """A LiveProjector for a loaded model (`io.registry.open_model`), with the encoder found in
    `default_encoder_dir(model.path)` when there is one, else starting from the mean w."""
    directory = default_encoder_dir(model.path)
    encoder = load_encoder(directory, model.G, device=device) if (directory / "config.json").is_file() else None
    return LiveProjector(model.G, encoder, device=device, **kwargs)

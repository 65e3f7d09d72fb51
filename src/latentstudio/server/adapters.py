"""The one place where the server calls other areas of latentstudio: walks (latent/, render/), projection
(invert/) and the built-in default model (io.registry). The server code only ever calls these functions, so a
change in another area's API is absorbed here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from ..latent.io import load_ws, save_latents
from ..latent.moves import lerp
from ..latent.neighbours import sample_neighbours
from ..latent.space import LatentSpace

log = logging.getLogger("latentstudio.server")
W_SPACE = LatentSpace("w")  # the server works on ws; neighbour and loop noise is one w_dim vector for all layers


def interpolate(a: torch.Tensor, b: torch.Tensor, frames: int) -> torch.Tensor:
    """`frames` ws from a to b inclusive [frames, num_ws, w_dim]."""
    return lerp(a, b, torch.linspace(0, 1, frames))


def neighbours(ws: torch.Tensor, count: int, strength: float, seed: int) -> torch.Tensor:
    """`count` neighbours [count, num_ws, w_dim] of ws: the exhibition's Gaussian noise in W, deterministic in seed
    (neighbour i does not depend on how many were asked for)."""
    return sample_neighbours(ws.cpu(), W_SPACE, count=count, sigma=float(strength), seed=int(seed))


def save_latent(path: Path, ws: torch.Tensor) -> None:
    """ws [num_ws, w_dim] as NVIDIA's projected_w.npz layout (written atomically)."""
    save_latents(path, ws.cpu())


def load_latent(path: Path) -> torch.Tensor:
    return load_ws(path)[0]


def open_video_writer(path: Path, fps: int, size: int):
    """An MP4 writer: .write(frames [B, H, W, 3] uint8), .close(), .abort() (no partial file left)."""
    from ..render.video import open_writer

    return open_writer(path, (size, size), fps=fps)


class DrawingProjector:
    """Projects visitor drawings within a time budget. With an encoder next to the model (MODEL/encoder, from
    `latentstudio train-encoder`) it uses the projection area's live path (encoder guess + refinement); without
    one it runs the optimisation projector from the mean w against the clock. Built once per model, on the job
    thread (the VGG16 loss loads here)."""

    def __init__(self, model, device, loss: str = "vgg+pixel"):
        from ..invert import (
            LIVE_CONFIG,
            LiveProjector,
            ProjectConfig,
            build_loss,
            default_encoder_dir,
            load_encoder,
            refine_settings,
            w_statistics,
        )

        self.G, self.device, self.live = model.G, device, None
        encoder_dir = default_encoder_dir(model.path)
        if (Path(encoder_dir) / "config.json").is_file():
            encoder = load_encoder(encoder_dir, self.G, device=device)
            self.live = LiveProjector(self.G, encoder, config=LIVE_CONFIG.replace(loss=loss), device=device)
            log.info("projecting drawings with the encoder in %s", encoder_dir)
            return
        self.config = ProjectConfig(steps=1000, space="w", loss=loss, perceptual_side=64, **refine_settings(True))
        self.loss = build_loss(loss, perceptual_side=self.config.perceptual_side, device=device)
        self.stats = w_statistics(self.G, 2000, device=device)
        from ..invert import project_images

        blank = torch.zeros(1, self.G.img_channels, self.G.img_resolution, self.G.img_resolution)
        # the first steps of every kernel are slow on CPUs; pay that here, not in a visitor's time budget
        project_images(self.G, blank, self.config.replace(steps=2), loss=self.loss, w_stats=self.stats,
                       device=device, progress=False)

    def __call__(self, image, budget_s: float) -> torch.Tensor:
        """PIL drawing -> ws [num_ws, w_dim] (CPU)."""
        if self.live is not None:
            return self.live(image, budget_s=budget_s).ws[0].cpu()
        from ..invert import image_to_target, project_images

        target = image_to_target(image, self.G)
        proj = project_images(self.G, target, self.config, loss=self.loss, w_stats=self.stats, device=self.device,
                              progress=False, time_budget_s=budget_s)
        return proj.ws[0].detach().cpu()


def open_serving_model(spec: str | None, device):
    """The model to serve: `spec` through io.registry.open_model; without a spec the built-in default model."""
    from ..io.registry import open_model

    model = open_model(spec, device=device)
    model.G.requires_grad_(False)  # the server never trains; projection optimises latents only
    return model


def seed_z(seed: int, z_dim: int) -> torch.Tensor:
    """z of a seed with NVIDIA's semantics [1, z_dim]."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).float()

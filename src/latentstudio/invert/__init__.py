"""Projection: from an image to the latent that renders it.

    from latentstudio.invert import ProjectConfig, load_targets, project_images
    targets, files = load_targets(["drawing.png"], G)             # squared + resized like `prepare`
    proj = project_images(G, targets, ProjectConfig(steps=300))   # proj.ws [N, num_ws, w_dim], proj.images

Offline: `project_images` (optimisation; `init_ws` from an encoder or a latent file). Live: `LiveProjector`
/ `live_project` (encoder guess + refinement within a time budget). Encoders: `train_encoder`,
`load_encoder`, `default_encoder_dir`.
"""

from .encoder import Encoder, EncoderConfig, default_encoder_dir, load_encoder, save_encoder
from .live import LIVE_CONFIG, LiveProjector, LiveResult, live_project, live_projector_for
from .losses import ImageLoss, build_loss
from .metrics import psnr, ssim
from .projector import ProjectConfig, Projection, WStats, project_images, refine_settings, w_statistics
from .targets import image_to_target, load_targets
from .train_encoder import EncoderTrainConfig, train_encoder

__all__ = ["project_images", "ProjectConfig", "Projection", "WStats", "w_statistics", "refine_settings", "load_targets",
           "image_to_target", "ImageLoss", "build_loss", "psnr", "ssim", "Encoder", "EncoderConfig",
           "load_encoder", "save_encoder", "default_encoder_dir", "train_encoder", "EncoderTrainConfig",
           "LiveProjector", "LiveResult", "live_project", "live_projector_for", "LIVE_CONFIG"]

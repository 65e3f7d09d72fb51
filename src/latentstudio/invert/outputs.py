"""What a projection leaves on disk, per target:

    OUT/<name>/projected_w.npz   key `w`, [1, num_ws, w_dim] float32 (NVIDIA's layout)
    OUT/<name>/target.png        the target as the projector saw it (squared, resized)
    OUT/<name>/proj.png          the latent rendered with the model's constant noise
    OUT/<name>/strip.png         target | projection side by side
    OUT/<name>/metrics.json      PSNR, SSIM, feature distance, steps, seconds, settings
    OUT/<name>/proj.mp4          optional: target | projection as the optimisation went (render.video)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..io.model_dir import atomic_write_text
from ..latent.io import save_latents
from ..render.images import make_grid, save_png, tensor_to_pils, to_uint8
from .metrics import psnr, ssim


def target_names(paths) -> list[str]:
    """Output folder names from file stems, made unique ('a', 'a-2', ...)."""
    names, seen = [], {}
    for p in paths:
        stem = Path(p).stem or "target"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


@torch.no_grad()
def projection_metrics(images: torch.Tensor, targets: torch.Tensor, vgg=None) -> list[dict]:
    """PSNR (dB), SSIM and the VGG16 feature distance (None without a VGG16) per image, measured on the
    images as saved (8-bit), so the numbers describe the PNG files."""
    images, targets = quantize(images), quantize(targets)
    p, s = psnr(images, targets), ssim(images, targets)
    fd = None
    if vgg is not None:
        dev = next(vgg.buffers()).device
        fd = vgg.distance(vgg(images.to(dev)), vgg(targets.to(dev))).cpu()
    return [{"psnr": round(float(p[i]), 3), "ssim": round(float(s[i]), 4),
             "feature_distance": round(float(fd[i]), 5) if fd is not None else None} for i in range(len(images))]


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round-trip through 8-bit pixels like a saved PNG: [N, C, H, W] in [-1, 1] on the CPU."""
    return torch.from_numpy(to_uint8(images).astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1


def write_target(out: Path, target: torch.Tensor, image: torch.Tensor, ws: torch.Tensor, metrics: dict) -> Path:
    """Write one target's files into `out` (created). target/image: [C, H, W]; ws: [num_ws, w_dim]."""
    out.mkdir(parents=True, exist_ok=True)
    save_latents(out / "projected_w.npz", ws.unsqueeze(0))
    tgt_pil, img_pil = tensor_to_pils(torch.stack([target.cpu(), image.cpu()]))
    save_png(tgt_pil, out / "target.png")
    save_png(img_pil, out / "proj.png")
    save_png(make_grid([tgt_pil, img_pil], ["target", "projection"], cols=2), out / "strip.png")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return out


@torch.no_grad()
def write_progress_video(path: Path, G, target: torch.Tensor, w_history: torch.Tensor, fps: int = 30,
                         batch: int = 8) -> Path:
    """target | projection for each recorded step (w_history [frames, num_ws, w_dim]) as an MP4."""
    from ..render.video import open_writer

    tgt = to_uint8(target.unsqueeze(0).cpu())
    size = (2 * tgt.shape[2], tgt.shape[1])
    with open_writer(path, size=size, fps=fps) as writer:
        for i in range(0, len(w_history), batch):
            imgs = to_uint8(G.synthesis(w_history[i:i + batch].to(G.device), noise_mode="const"))
            writer.write(np.concatenate([np.repeat(tgt, len(imgs), axis=0), imgs], axis=2))
    return path

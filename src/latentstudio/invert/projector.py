"""Optimisation projector: the latent whose image matches a target.

Image2StyleGAN-style optimisation with what NVIDIA's stylegan2-ada projector does well:
- start from the mean w of many mapped samples (or from an encoder guess, or a latent file);
- Adam whose learning rate ramps up over the first 5 % of the steps and down (cosine) over the last 25 %;
- Gaussian noise added to w, shrinking to zero over the first 75 % (explores early, settles late);
- optionally (noise='optimize', NVIDIA's default; ours is 'const', see docs/projection.md) the per-pixel noise
  inputs optimised alongside w, kept Gaussian by a multi-scale autocorrelation penalty;
plus W+ mode (one w per synthesis layer; reaches images the W space cannot).

Targets of a batch never influence each other: losses are summed (not averaged), each target has its own
noise inputs and its own random stream, and Adam works element-wise, so a batch gives the results of
projecting the targets one by one (up to float rounding).

The saved latent is rendered with the model's constant noise (`noise_mode='const'`), like every other
latentstudio tool renders latents; the optimised noise inputs only help the search, as in NVIDIA's tool.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..config import Config, ConfigError
from ..device import resolve_device
from ..errors import UserError
from ..utils.progress import bar
from .losses import ImageLoss, build_loss

SPACES = ("w", "w+")
NOISE_MODES = ("optimize", "const")


@dataclasses.dataclass(frozen=True)
class ProjectConfig(Config):
    steps: int = 1000
    space: str = "w"  # w: one w for all layers (stays on the model's manifold); w+: one w per layer
    loss: str = "vgg+pixel"  # see invert.losses
    lr: float = 0.1  # peak Adam learning rate
    lr_rampup: float = 0.05  # fraction of the run spent ramping the learning rate up
    lr_rampdown: float = 0.25  # fraction spent ramping it down (cosine)
    w_noise: float = 0.05  # noise added to w at the start, in units of the spread of w
    w_noise_ramp: float = 0.75  # fraction of the run over which that noise fades to zero
    noise: str = "const"  # keep the model's constant per-pixel noise (what tools render with), or optimize it
    noise_reg: float = 1e5  # weight of the noise autocorrelation penalty
    w_avg_samples: int = 10000  # mapped samples behind the mean w and its spread
    seed: int = 0
    batch: int = 8  # targets optimised together
    perceptual_side: int | None = 256  # images larger than this are downsampled for the VGG16 loss

    def __post_init__(self):
        if self.space not in SPACES:
            raise ConfigError(f"space={self.space!r}: use w or w+")
        if self.noise not in NOISE_MODES:
            raise ConfigError(f"noise={self.noise!r}: use optimize or const")
        if self.steps < 1 or self.batch < 1:
            raise ConfigError("steps and batch must be at least 1")


def refine_settings(from_mean: bool, space: str = "w") -> dict:
    """Settings that depend on the start: from the mean w the optimiser explores (noise on w, peak learning rate
    0.1, NVIDIA's); from an encoder guess or a latent file it is next to the answer (no noise on w), with a peak
    of 0.1 in W and 0.05 in W+. Tuned on the stage-2 built-in model (111.776 kimg) and its encoder (2,200 steps on it),
    with targets kept apart from bench/project.py's (3 generated, seeds 800001-800003, and 2 smiles drawings of
    seed 7), 100 steps, PSNR / SSIM / feature distance:

    - W, generated: 36.82 at 0.05, 37.49 / 0.9931 / 0.0160 at 0.1, 35.51 at 0.2, 31.86 at 0.3;
    - W+, generated: 40.55 at 0.02, 41.40 at 0.03, 41.80 / 0.9960 / 0.0065 at 0.05, 41.14 at 0.1, 36.88 at 0.2;
      drawings 21.47 / 0.792 / 0.865 at 0.05, 21.22 / 0.789 / 0.840 at 0.1, 21.04 / 0.791 / 0.796 at 0.2.

    The stage-1 model (63.776 kimg) liked twice these rates (0.2 in W, 0.1 in W+): the sharper generator takes
    smaller steps. Noise on w from a guess loses everywhere (W generated 40.8 against 43.6 dB on stage 1 with
    0.05). bench/refine_lr.py repeats the tuning; see docs/projection.md."""
    if from_mean:
        return {"lr": 0.1, "w_noise": 0.05}
    return {"lr": 0.1 if space == "w" else 0.05, "w_noise": 0.0}


@dataclasses.dataclass(frozen=True)
class WStats:
    w_avg: torch.Tensor  # [w_dim]
    w_std: float  # root mean squared distance of mapped samples from w_avg


@dataclasses.dataclass
class Projection:
    ws: torch.Tensor  # [N, num_ws, w_dim], CPU
    images: torch.Tensor  # [N, C, H, W] in [-1, 1]: ws rendered with constant noise, CPU
    loss_history: torch.Tensor  # [steps, N] image loss per step
    seconds: list[float]  # per target (its batch's time shared equally)
    steps: int
    w_history: torch.Tensor | None = None  # [frames, N, num_ws, w_dim] when recorded
    frame_steps: list[int] = dataclasses.field(default_factory=list)


@torch.no_grad()
def w_statistics(G, num_samples: int = 10000, seed: int = 123, device=None, chunk: int = 4096) -> WStats:
    """Mean and spread of w over `num_samples` mapped Gaussian z (NVIDIA's projector uses 10000, seed 123)."""
    if G.c_dim:
        raise UserError("projection of conditional (class) models is not supported yet")
    dev = resolve_device(device) if device is not None else G.device
    z = torch.from_numpy(np.random.RandomState(seed).randn(num_samples, G.z_dim)).to(dev, torch.float32)
    w = torch.cat([G.mapping(z[i:i + chunk], None, update_w_avg=False)[:, 0] for i in range(0, num_samples, chunk)])
    w_avg = w.mean(dim=0)
    return WStats(w_avg=w_avg, w_std=float((w - w_avg).square().sum(dim=1).mean().sqrt()))


def learning_rate(t: float, cfg: ProjectConfig) -> float:
    """NVIDIA's schedule at run fraction t in [0, 1]: linear ramp-up, cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown) if cfg.lr_rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if cfg.lr_rampup > 0:
        ramp *= min(1.0, t / cfg.lr_rampup)
    return cfg.lr * ramp


def w_noise_scale(t: float, w_std: float, cfg: ProjectConfig) -> float:
    if cfg.w_noise_ramp <= 0:
        return 0.0
    return w_std * cfg.w_noise * max(0.0, 1.0 - t / cfg.w_noise_ramp) ** 2


def noise_regularization(bufs: list[torch.Tensor], n: int, device) -> torch.Tensor:
    """Per-target squared autocorrelation of the noise inputs at shifts of one pixel, over a pyramid [n]."""
    reg = torch.zeros(n, device=device)
    for buf in bufs:
        x = buf
        while True:
            reg = reg + (x * torch.roll(x, 1, dims=3)).mean(dim=[1, 2, 3]).square()
            reg = reg + (x * torch.roll(x, 1, dims=2)).mean(dim=[1, 2, 3]).square()
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return reg


def _noise_setup(G, gens: list[torch.Generator], cfg: ProjectConfig, dev):
    """The synthesis network to optimise through and its per-target noise inputs [n, 1, r, r].
    The caller's G is never modified: with optimised noise we work on a private copy."""
    if cfg.noise == "const":
        return G.synthesis, []
    synth = copy.deepcopy(G.synthesis).requires_grad_(False)
    bufs = []
    for module in synth.modules():
        if getattr(module, "use_noise", False) and isinstance(getattr(module, "noise_const", None), torch.Tensor):
            r = module.noise_const.shape[-1]
            buf = torch.stack([torch.randn([1, r, r], generator=g) for g in gens]).to(dev).requires_grad_(True)
            module.noise_const = buf  # broadcasts against [n, C, r, r] where the layer adds its noise
            bufs.append(buf)
    return synth, bufs


def _resolve_targets(G, targets: torch.Tensor, dev) -> torch.Tensor:
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if targets.ndim != 4 or tuple(targets.shape[1:]) != expected:
        raise UserError(f"targets have shape {list(targets.shape)}; this model needs [N, {expected[0]}, "
                        f"{expected[1]}, {expected[2]}] (load them with latentstudio.invert.load_targets)")
    return targets.to(dev, torch.float32)


def project_images(G, targets: torch.Tensor, config: ProjectConfig = ProjectConfig(), init_ws=None,
                   loss: ImageLoss | None = None, w_stats: WStats | None = None, device="auto",
                   record_every: int = 0, progress: bool = True, time_budget_s: float | None = None) -> Projection:
    """Project targets [N, C, H, W] in [-1, 1] (see `load_targets`) into G's latent space.

    init_ws: start latents [N, num_ws, w_dim] (encoder output, a latent file); default: the mean w.
    record_every: keep w every k steps (for progress videos). time_budget_s: run each batch's schedule
    against the clock instead of a step count and stop when the budget is spent (live use).
    """
    dev = resolve_device(device)
    targets = _resolve_targets(G, targets, dev)
    n = targets.shape[0]
    stats = w_stats or w_statistics(G, config.w_avg_samples, device=dev)
    loss = loss if loss is not None else build_loss(config.loss, perceptual_side=config.perceptual_side, device=dev)
    if init_ws is None:
        init_ws = stats.w_avg.reshape(1, 1, -1).expand(n, G.num_ws, -1)
    init_ws = torch.as_tensor(init_ws, dtype=torch.float32).to(dev)
    if tuple(init_ws.shape) != (n, G.num_ws, G.w_dim):
        raise UserError(f"start latents have shape {list(init_ws.shape)}; expected [{n}, {G.num_ws}, {G.w_dim}]")
    parts = []
    total = math.ceil(n / config.batch) * config.steps
    progress_bar = bar(total if time_budget_s is None else None, desc="project", unit="step") if progress else None
    try:
        for i in range(0, n, config.batch):
            sl = slice(i, min(i + config.batch, n))
            parts.append(_project_batch(G, targets[sl], init_ws[sl], loss, stats.w_std, config, dev, record_every,
                                        progress_bar, time_budget_s))
    finally:
        if progress_bar is not None:
            progress_bar.close()
    return _concat(parts)


def _project_batch(G, targets, start_ws, loss, w_std, cfg: ProjectConfig, dev, record_every, progress_bar,
                   budget) -> Projection:
    t0 = time.perf_counter()
    n = targets.shape[0]
    gens = [torch.Generator().manual_seed(cfg.seed) for _ in range(n)]
    target_feats = loss.target_features(targets)
    synth, noise_bufs = _noise_setup(G, gens, cfg, dev)
    w_opt = (start_ws.mean(dim=1, keepdim=True) if cfg.space == "w" else start_ws).detach().clone()
    w_opt.requires_grad_(True)
    params = [w_opt] + noise_bufs
    optimizer = torch.optim.Adam(params, betas=(0.9, 0.999), lr=cfg.lr)
    history, w_hist, frame_steps = [], [], []
    step = 0
    while True:
        t = step / cfg.steps if budget is None else (time.perf_counter() - t0) / budget
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(min(t, 1.0), cfg)
        w_noise = torch.stack([torch.randn(w_opt.shape[1:], generator=g) for g in gens]).to(dev)
        ws = (w_opt + w_noise * w_noise_scale(min(t, 1.0), w_std, cfg)).expand(-1, G.num_ws, -1)
        dist = loss(synth(ws, noise_mode="const"), target_feats)
        total = (dist + cfg.noise_reg * noise_regularization(noise_bufs, n, dev)).sum()
        grads = torch.autograd.grad(total, params)  # leaves G's own .grad untouched (shared with other users)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        optimizer.step()
        with torch.no_grad():
            for buf in noise_bufs:
                buf -= buf.mean(dim=[1, 2, 3], keepdim=True)
                buf *= buf.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        history.append(dist.detach().cpu())
        step += 1
        if progress_bar is not None:
            progress_bar.update(1)
            progress_bar.set_postfix(loss=f"{float(dist.detach().mean()):.4f}")
        done = step >= cfg.steps if budget is None else _budget_spent(t0, step, budget)
        if record_every and (step % record_every == 0 or step == 1 or done):
            w_hist.append(w_opt.detach().expand(-1, G.num_ws, -1).cpu().clone())
            frame_steps.append(step)
        if done:
            break
    ws = w_opt.detach().expand(-1, G.num_ws, -1).contiguous()
    with torch.no_grad():
        images = G.synthesis(ws, noise_mode="const").cpu()
    seconds = time.perf_counter() - t0
    return Projection(ws=ws.cpu(), images=images, loss_history=torch.stack(history), seconds=[seconds / n] * n,
                      steps=step, w_history=torch.stack(w_hist) if w_hist else None, frame_steps=frame_steps)


def _budget_spent(t0: float, steps: int, budget: float) -> bool:
    elapsed = time.perf_counter() - t0
    return elapsed + elapsed / steps > budget  # another step of average length would overrun


def _concat(parts: list[Projection]) -> Projection:
    if len(parts) == 1:
        return parts[0]
    steps = max(p.steps for p in parts)
    hist = [F.pad(p.loss_history, (0, 0, 0, steps - p.steps), value=float("nan")) for p in parts]
    w_hist, frame_steps = None, parts[0].frame_steps
    if all(p.w_history is not None for p in parts):
        # Batches that ran for different numbers of steps (a time budget) recorded different numbers of
        # frames: the shorter ones hold their final latent, so every target's history ends where it stopped.
        longest = max(parts, key=lambda p: p.w_history.shape[0])
        frames, frame_steps = longest.w_history.shape[0], longest.frame_steps
        w_hist = torch.cat([torch.cat([p.w_history, p.w_history[-1:].expand(frames - p.w_history.shape[0],
                                                                             -1, -1, -1)]) for p in parts], dim=1)
    return Projection(ws=torch.cat([p.ws for p in parts]), images=torch.cat([p.images for p in parts]),
                      loss_history=torch.cat(hist, dim=1), seconds=[s for p in parts for s in p.seconds],
                      steps=steps, w_history=w_hist, frame_steps=frame_steps)

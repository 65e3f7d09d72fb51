"""Training the image -> W+ encoder on images the generator renders itself (their latents are known).

Each step samples latents (W, truncated by a random psi, half of them style-mixed into W+), renders them with
random per-pixel noise, and trains the encoder with
- a latent loss: squared distance to the true ws, in units of the spread of w (cheap, from the start);
- reconstruction losses, switched on after `recon_start` of the run: the guessed ws are rendered and compared
  with the input by pixel MSE and the VGG16 distance (at `perceptual_side` pixels, for speed on CPUs).
A W head (`EncoderConfig.w_head`) gets the same losses for its single w: the latent loss on the latents that
are one w (not style-mixed), and its renders in the reconstruction losses.
Given a folder of the user's own pictures (`images`, e.g. the drawings the model was trained on), each step
also encodes `real_batch` of them and trains on their reconstruction alone (no latent is known for them): the
generator's renders teach the encoder where latents lie, the pictures teach it what people will actually
project, which renders of a young model can be far from.
The generator stays frozen and untouched (gradients are taken for the encoder only).
"""

from __future__ import annotations

import dataclasses
import math
import time

import torch

from ..config import Config, ConfigError
from ..device import resolve_device
from ..utils.progress import bar
from .encoder import Encoder, EncoderConfig
from .losses import build_loss
from .metrics import psnr
from .projector import WStats, w_statistics


@dataclasses.dataclass(frozen=True)
class EncoderTrainConfig(Config):
    steps: int = 4000
    batch: int = 16
    lr: float = 1e-3  # Adam, cosine-decayed to 5 % over the run
    # Linear ramp-up of the lr over the first steps: fresh Adam moments make the first steps move every weight
    # by about lr at once, the wrong start for a trained encoder that is being continued (--resume).
    warmup_steps: int = 0
    latent_weight: float = 1.0
    pixel_weight: float = 1.0
    vgg_weight: float = 0.5  # 0 skips the perceptual loss (no VGG16 weights needed)
    recon_start: float = 0.3  # fraction of the run before the reconstruction losses switch on
    recon_batch: int = 8  # images per step that get the (costly) reconstruction losses
    perceptual_side: int = 64
    psi_min: float = 0.4  # training latents: truncation psi drawn from [psi_min, 1]
    mix_prob: float = 0.5  # share of style-mixed (W+) training latents
    val_size: int = 16
    real_batch: int = 4  # pictures per step from `images` (when given), reconstruction losses only
    real_flip: bool = True  # mirror half of those pictures at random (drawings read the same mirrored)
    log_every: int = 100
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch < 1:
            raise ConfigError("steps and batch must be at least 1")
        if not 0 <= self.recon_start <= 1 or not 0 <= self.mix_prob <= 1:
            raise ConfigError("recon_start and mix_prob must lie in [0, 1]")
        if self.real_batch < 0 or self.warmup_steps < 0:
            raise ConfigError("real_batch and warmup_steps must be at least 0")


@torch.no_grad()
def sample_training_ws(G, n: int, stats: WStats, cfg: EncoderTrainConfig, gen: torch.Generator, dev):
    """n latents [n, num_ws, w_dim]: mapped z pulled towards w_avg by a random psi, some style-mixed."""
    z = torch.randn([2 * n, G.z_dim], generator=gen).to(dev)
    w = G.mapping(z, None, update_w_avg=False)
    psi = (cfg.psi_min + (1 - cfg.psi_min) * torch.rand([2 * n, 1, 1], generator=gen)).to(dev)
    w = stats.w_avg + psi * (w - stats.w_avg)
    ws, other = w[:n].clone(), w[n:]
    mix = torch.rand([n], generator=gen) < cfg.mix_prob
    cut = torch.randint(1, G.num_ws, [n], generator=gen)
    layer = torch.arange(G.num_ws).reshape(1, -1)
    take = (mix.reshape(-1, 1) & (layer >= cut.reshape(-1, 1))).to(dev)
    ws[take] = other[take]
    return ws


def train_encoder(G, config: EncoderTrainConfig = EncoderTrainConfig(), encoder_config: EncoderConfig | None = None,
                  features=None, device="auto", progress: bool = True, log=print, encoder: Encoder | None = None,
                  on_checkpoint=None, checkpoint_every: int = 0, images: torch.Tensor | None = None
                  ) -> tuple[Encoder, dict]:
    """Train (or continue training) an encoder for G. Returns (encoder, summary with validation numbers).
    images: the user's pictures [N, C, R, R] in [-1, 1] (see `load_targets`) to train on as well; a tenth of
    them (up to val_size) is held out and reported as `real_psnr`.
    Runs under its own seeded copy of torch's random state (the per-pixel noise of the renders), so a run is
    reproducible and the caller's random state is left as it was."""
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(config.seed)
        return _train(G, config, encoder_config, features, dev, progress, log, encoder, on_checkpoint,
                      checkpoint_every, images)


def split_pictures(G, images, config: EncoderTrainConfig, dev):
    """(training pictures, held-out pictures) from `images`; (None, None) without them."""
    if images is None or config.real_batch == 0:
        return None, None
    expected = (G.img_channels, G.img_resolution, G.img_resolution)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected or len(images) < 2:
        shape = ", ".join(map(str, expected))
        raise ConfigError(f"images (--images) have shape {list(images.shape)}; need at least 2 of [{shape}]")
    if config.pixel_weight <= 0 and config.vgg_weight <= 0:
        raise ConfigError("training on pictures needs a reconstruction loss (pixel_weight or vgg_weight > 0)")
    held = min(config.val_size, max(1, len(images) // 10))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed + 2))
    images = images.to(dev, torch.float32)
    return images[order[held:]], images[order[:held]]


def _train(G, config, encoder_config, features, dev, progress, log, encoder, on_checkpoint, checkpoint_every,
           images):
    gen = torch.Generator().manual_seed(config.seed)
    pictures, val_pictures = split_pictures(G, images, config, dev)
    stats = w_statistics(G, device=dev)
    resumed = encoder is not None
    if encoder is None:
        encoder = Encoder(encoder_config or EncoderConfig.for_generator(G)).to(dev)
        encoder.set_w_stats(stats.w_avg, stats.w_std)
    encoder.train().requires_grad_(True)
    params = list(encoder.parameters())
    opt = torch.optim.Adam(params, lr=config.lr, betas=(0.9, 0.99))
    recon_loss = _recon_loss(config, features, dev)
    val_ws = sample_training_ws(G, config.val_size, stats, config, torch.Generator().manual_seed(config.seed + 1), dev)
    with torch.no_grad():
        val_images = G.synthesis(val_ws, noise_mode="const")
    scale = stats.w_std / math.sqrt(G.w_dim)
    progress_bar = bar(config.steps, desc="train-encoder", unit="step") if progress else None
    if resumed and config.log_every:  # where a continued encoder starts from, on this run's validation set
        val = evaluate_encoder(G, encoder, val_images, val_ws, scale, val_pictures)
        log(f"step 0/{config.steps}  {describe_validation(val)}")
    t0 = time.perf_counter()
    for step in range(config.steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(config, step)
        use_recon = recon_loss is not None and step >= int(config.recon_start * config.steps)
        loss = _step_loss(G, encoder, sample_training_ws(G, config.batch, stats, config, gen, dev), scale, config,
                          recon_loss if use_recon else None)
        if use_recon and pictures is not None:
            loss = loss + _picture_loss(G, encoder, sample_pictures(pictures, config, gen), recon_loss)
        grads = torch.autograd.grad(loss, params)  # the generator's own gradients are never touched
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        if progress_bar is not None:
            progress_bar.update(1)
            progress_bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if config.log_every and ((step + 1) % config.log_every == 0 or step + 1 == config.steps):
            val = evaluate_encoder(G, encoder, val_images, val_ws, scale, val_pictures)
            log(f"step {step + 1}/{config.steps}  loss {float(loss.detach()):.4f}  {describe_validation(val)}  "
                f"({time.perf_counter() - t0:.0f} s)")
        if on_checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0:
            on_checkpoint(encoder.eval(), step + 1)
            encoder.train()
    if progress_bar is not None:
        progress_bar.close()
    encoder.eval().requires_grad_(False)
    summary = evaluate_encoder(G, encoder, val_images, val_ws, scale, val_pictures)
    summary.update(seconds=time.perf_counter() - t0, steps=config.steps)
    if pictures is not None:
        summary.update(pictures=len(pictures), held_out_pictures=len(val_pictures))
    return encoder, summary


def learning_rate(config: EncoderTrainConfig, step: int) -> float:
    """The lr of a step: linear ramp-up over warmup_steps, cosine decay to 5 % over the run."""
    ramp = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    return config.lr * ramp * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / config.steps)))


def _recon_loss(config: EncoderTrainConfig, features, dev):
    terms = [f"{w}*{name}" for w, name in ((config.pixel_weight, "pixel"), (config.vgg_weight, "vgg")) if w > 0]
    if not terms:
        return None
    return build_loss("+".join(terms), features=features, perceptual_side=config.perceptual_side, device=dev)


def _step_loss(G, encoder, ws, scale, config: EncoderTrainConfig, recon_loss):
    """Latent loss on the whole batch; image losses (when on) on its first `recon_batch` samples. The encoder
    sees renders with random per-pixel noise, so it learns to ignore that noise. A W head learns the w of
    the latents that are one w (not style-mixed); its renders join the image losses for every sample, mixed
    ones too (the closest single w is what a W projection of such an image starts from)."""
    with torch.no_grad():
        images = G.synthesis(ws, noise_mode="random")
    starts = encoder.starts(encoder.guesses(images))
    loss = config.latent_weight * ((starts["w+"] - ws) / scale).square().mean()
    single = unmixed(ws)
    if encoder.config.w_head and bool(single.any()):
        w_err = ((starts["w"][:, 0] - ws[:, 0]) / scale).square().mean(dim=1)
        loss = loss + config.latent_weight * w_err[single].mean()
    if recon_loss is not None:
        # The guess is rendered with the model's constant noise, so it is compared with the true latents
        # rendered the same way (not with the random-noise input, whose noise no latent can explain).
        k = min(config.recon_batch, len(images))
        with torch.no_grad():
            clean = G.synthesis(ws[:k], noise_mode="const")
        loss = loss + _render_loss(G, encoder, starts, k, recon_loss, recon_loss.target_features(clean))
    return loss


def unmixed(ws: torch.Tensor) -> torch.Tensor:
    """[N] bools: the latents that are one w on every layer (not style-mixed)."""
    return (ws == ws[:, :1]).all(dim=2).all(dim=1)


def _render_loss(G, encoder, starts: dict, k: int, recon_loss, target_features):
    """Reconstruction loss of the first k W+ guesses, and of the W head's ws when there is one."""
    spaces = ("w+", "w") if encoder.config.w_head else ("w+",)
    return sum(recon_loss(G.synthesis(starts[sp][:k], noise_mode="const"), target_features).mean() for sp in spaces)


def sample_pictures(pictures, config: EncoderTrainConfig, gen: torch.Generator):
    """`real_batch` pictures drawn at random (with replacement), half of them mirrored when real_flip."""
    idx = torch.randint(len(pictures), [config.real_batch], generator=gen)
    batch = pictures[idx.to(pictures.device)]
    if config.real_flip:
        flip = (torch.rand([config.real_batch], generator=gen) < 0.5).to(pictures.device)
        batch = torch.where(flip.reshape(-1, 1, 1, 1), batch.flip(3), batch)
    return batch


def _picture_loss(G, encoder, pictures, recon_loss):
    """Reconstruction of the user's pictures: their guessed ws rendered with the model's constant noise (the
    W+ guess, and the W head's w when there is one)."""
    starts = encoder.starts(encoder.guesses(pictures))
    return _render_loss(G, encoder, starts, len(pictures), recon_loss, recon_loss.target_features(pictures))


@torch.no_grad()
def evaluate_encoder(G, encoder: Encoder, images, ws, scale: float, pictures=None) -> dict:
    """Latent error (mean squared, in units of w's per-dimension spread) and PSNR of the re-rendered guess;
    with held-out pictures, the PSNR of their re-rendered guesses too (`real_psnr`)."""
    was_training = encoder.training
    encoder.eval()
    starts = encoder.starts(encoder.guesses(images))
    pred = starts["w+"]
    out = {"latent_error": float(((pred - ws) / scale).square().mean()), "psnr": _render_psnr(G, pred, images)}
    if encoder.config.w_head:  # the single-w guess: its PSNR (the W start), its error on the unmixed latents
        out["w_psnr"] = _render_psnr(G, starts["w"], images)
        single = unmixed(ws)
        if bool(single.any()):
            out["w_latent_error"] = float(((starts["w"][single, 0] - ws[single, 0]) / scale).square().mean())
    if pictures is not None:
        picture_starts = encoder.starts(encoder.guesses(pictures))
        out["real_psnr"] = _render_psnr(G, picture_starts["w+"], pictures)
        if encoder.config.w_head:
            out["real_w_psnr"] = _render_psnr(G, picture_starts["w"], pictures)
    encoder.train(was_training)
    return out


def describe_validation(val: dict) -> str:
    """One line of `evaluate_encoder`'s numbers."""
    parts = [f"val latent {val['latent_error']:.4f}", f"val psnr {val['psnr']:.2f} dB"]
    if "w_psnr" in val:
        parts.append(f"W head {val['w_psnr']:.2f} dB")
    if "real_psnr" in val:
        parts.append(f"held-out pictures {val['real_psnr']:.2f} dB")
    if "real_w_psnr" in val:
        parts.append(f"(W head {val['real_w_psnr']:.2f} dB)")
    return "  ".join(parts)


def _render_psnr(G, ws, images) -> float:
    return float(psnr(G.synthesis(ws, noise_mode="const"), images).mean())

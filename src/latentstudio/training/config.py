"""The training configuration: one frozen dataclass with every hyper-parameter resolved.

Defaults come from the network preset's `TrainingDefaults` (tuned at the preset's own resolution and batch).
When the batch or resolution differs from the preset's, the values that depend on them are re-derived with
the ADA paper's "auto" rules: R1 gamma = 0.0002 * resolution^2 / batch, EMA half-life proportional to the
batch (10 kimg at batch 32), minibatch-stddev group = min(4, per-GPU batch). Anything given explicitly wins.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from ..config import Config, ConfigError
from ..models.config import Preset, TrainingDefaults, get_preset

AUG_MODES = ("ada", "diffaugment", "none")


@dataclasses.dataclass(frozen=True)
class AugmentConfig(Config):
    mode: str = "ada"  # ada | diffaugment | none
    pipe: str = "bgc"  # ADA op set: bg (geometric), bgc (geometric + colour)
    target: float = 0.6  # ADA r_t: wanted E[sign(D(real))]
    interval: int = 4  # adjust p every N steps
    speed_kimg: float = 20.0  # p can move 0 -> 1 in this many kimg (ADA paper: 500 for 25,000-kimg GPU runs)
    initial_p: float = 0.0
    fixed_p: float | None = None  # keep p constant (no adaptation)
    diffaugment_policy: str = "color,translation,cutout"

    def __post_init__(self):
        if self.mode not in AUG_MODES:
            raise ConfigError(f"--aug {self.mode!r}: use {', '.join(AUG_MODES)}")
        if self.pipe not in ("bg", "bgc", "c"):
            raise ConfigError(f"augpipe {self.pipe!r}: use bg, bgc or c")
        if not 0 < self.target < 1:
            raise ConfigError(f"--target {self.target}: must be between 0 and 1 (ADA paper: 0.6)")
        if self.speed_kimg <= 0:
            raise ConfigError(f"--ada-kimg {self.speed_kimg}: must be > 0")


@dataclasses.dataclass(frozen=True)
class LossConfig(Config):
    r1_gamma: float = 10.0
    r1_interval: int = 16  # lazy R1: every N steps, with the penalty scaled by N
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing_prob: float = 0.9


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    preset: str = "cpu128"
    resolution: int = 128
    img_channels: int = 3
    c_dim: int = 0
    batch: int = 16  # global batch (all ranks together)
    batch_gpu: int | None = None  # per-rank micro-batch (gradient accumulation); default = batch / ranks
    mbstd_group: int = 4
    lrate_g: float = 0.0025
    lrate_d: float = 0.0025
    betas: tuple = (0.0, 0.99)
    ema_kimg: float = 5.0
    ema_rampup: float | None = 0.05
    loss: LossConfig = LossConfig()
    augment: AugmentConfig = AugmentConfig()
    kimg: float = 200.0
    tick_kimg: float = 1.0
    snap: int = 5  # snapshot every N ticks
    keep: int = 3  # keep the newest N snapshots (0 = all)
    mirror: bool = False
    seed: int = 0
    freezed: int = 0  # freeze D's first N layers (transfer learning)
    d_warmup_kimg: float = 0.0  # train only D for the first N kimg (fine-tuning a model that has no D)
    metrics: tuple = ()
    metrics_num_gen: int = 1000
    grid_seeds: int = 32  # sample grid: seeds 0 .. N-1


def resolve(preset_name: str, resolution: int, img_channels: int = 3, c_dim: int = 0, world_size: int = 1,
            **overrides) -> tuple[TrainConfig, Preset]:
    """A TrainConfig for a dataset of this resolution/channels; `overrides` are the options the user gave
    (None = not given). Returns the config and the network preset re-targeted to the dataset."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    preset = get_preset(preset_name, resolution=resolution, img_channels=img_channels, c_dim=c_dim)
    base_res = get_preset(preset_name).generator.img_resolution
    td: TrainingDefaults = preset.training
    batch = overrides.pop("batch", td.batch)
    if batch % world_size:
        raise ConfigError(f"--batch {batch}: must be divisible by the number of processes ({world_size})")
    per_rank = batch // world_size
    batch_gpu = overrides.pop("batch_gpu", None) or per_rank
    if per_rank % batch_gpu:
        raise ConfigError(f"--batch-gpu {batch_gpu}: must divide the per-process batch {per_rank}")
    # The auto rules, applied as ratios to the preset's tuned values so presets keep their own numbers.
    gamma = td.gamma * (resolution / base_res) ** 2 * (td.batch / batch)
    ema_kimg = td.ema_kimg * batch / td.batch
    mbstd = overrides.pop("mbstd_group", min(td.mbstd, batch_gpu))
    if batch_gpu % mbstd:
        raise ConfigError(f"per-process batch {batch_gpu} is not divisible by the minibatch-stddev group {mbstd}; "
                          "pick a batch that is a multiple of 4")
    loss = LossConfig(r1_gamma=overrides.pop("gamma", gamma), pl_weight=td.pl_weight,
                      style_mixing_prob=td.style_mixing_prob)
    loss = loss.replace(**_pop_fields(overrides, LossConfig))
    if batch_gpu // loss.pl_batch_shrink < 1:
        loss = loss.replace(pl_batch_shrink=1)
    augment = AugmentConfig(**_pop_fields(overrides, AugmentConfig))
    cfg = TrainConfig(preset=preset_name, resolution=resolution, img_channels=img_channels, c_dim=c_dim,
                      batch=batch, batch_gpu=batch_gpu, mbstd_group=mbstd, lrate_g=td.lrate, lrate_d=td.lrate,
                      ema_kimg=ema_kimg, ema_rampup=td.ema_rampup, loss=loss, augment=augment)
    if "lrate" in overrides:
        lr = overrides.pop("lrate")
        overrides.setdefault("lrate_g", lr)
        overrides.setdefault("lrate_d", lr)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ConfigError(f"unknown training option(s) {sorted(unknown)}")
    cfg = cfg.replace(**overrides)
    if cfg.d_warmup_kimg < 0 or cfg.d_warmup_kimg >= cfg.kimg:
        raise ConfigError(f"--d-warmup {cfg.d_warmup_kimg:g}: must be between 0 and --kimg ({cfg.kimg:g})")
    return cfg, retarget(preset, cfg)


def retarget(preset: Preset, cfg: TrainConfig) -> Preset:
    """The preset's networks with this run's minibatch-stddev group and frozen D layers."""
    disc = preset.discriminator
    disc = disc.replace(epilogue=disc.epilogue.replace(mbstd_group_size=cfg.mbstd_group),
                        block=disc.block.replace(freeze_layers=cfg.freezed))
    return preset.replace(discriminator=disc)


# Command-line option -> AugmentConfig field.
AUG_OPTIONS = MappingProxyType({"target": "target", "aug": "mode", "augpipe": "pipe", "ada_kimg": "speed_kimg",
                                "aug_p": "fixed_p"})


def _pop_fields(overrides: dict, cls) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    renames = AUG_OPTIONS if cls is AugmentConfig else {}
    picked = {}
    for key in list(overrides):
        field = renames.get(key, key)
        if field in names:
            picked[field] = overrides.pop(key)
    return picked

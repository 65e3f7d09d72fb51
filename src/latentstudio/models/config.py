"""Network configs and named presets.

Field names and defaults mirror the constructor arguments of NVIDIA's stylegan2-ada-pytorch networks, so a
config read from one of their pickles maps onto ours field by field.
"""

from __future__ import annotations

import dataclasses
import math

from ..config import Config, ConfigError

RESOLUTIONS = tuple(2**i for i in range(4, 11))  # 16 ... 1024


@dataclasses.dataclass(frozen=True)
class MappingConfig(Config):
    num_layers: int = 8  # fully connected layers z -> w
    embed_features: int | None = None  # class embedding size (default: w_dim)
    layer_features: int | None = None  # hidden width (default: w_dim)
    activation: str = "lrelu"
    lr_multiplier: float = 0.01  # equalised-lr multiplier: the mapping learns 100x slower
    w_avg_beta: float | None = 0.995  # decay of the tracked mean w used for truncation


@dataclasses.dataclass(frozen=True)
class SynthesisConfig(Config):
    channel_base: int = 32768  # channels at resolution r = min(channel_base // r, channel_max)
    channel_max: int = 512
    num_fp16_res: int = 0  # run the N highest resolutions in reduced precision (opt-in)
    conv_clamp: float | None = None  # clamp activations to +-conv_clamp (needed with fp16)
    architecture: str = "skip"  # skip (StyleGAN2 default), orig or resnet
    resample_filter: tuple = (1, 3, 3, 1)
    use_noise: bool = True
    activation: str = "lrelu"


@dataclasses.dataclass(frozen=True)
class GeneratorConfig(Config):
    z_dim: int = 512
    c_dim: int = 0  # number of classes (one-hot); 0 = unconditional
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3  # 3 = RGB, 1 = grayscale
    mapping: MappingConfig = MappingConfig()
    synthesis: SynthesisConfig = SynthesisConfig()

    def __post_init__(self):
        check_resolution(self.img_resolution, "img_resolution")
        if self.img_channels not in (1, 3):
            raise ConfigError(f"img_channels={self.img_channels}: use 3 (RGB) or 1 (grayscale)")
        if self.synthesis.architecture not in ("skip", "orig", "resnet"):
            raise ConfigError(f"synthesis.architecture={self.synthesis.architecture!r}: use skip, orig or resnet")


@dataclasses.dataclass(frozen=True)
class DBlockConfig(Config):
    activation: str = "lrelu"
    resample_filter: tuple = (1, 3, 3, 1)
    freeze_layers: int = 0  # freeze the first N layers (transfer learning, "FreezeD")


@dataclasses.dataclass(frozen=True)
class DMappingConfig(Config):
    """Class-embedding network of a conditional D (stylegan2-ada-pytorch defaults; TF models use 0 / 0.1)."""

    num_layers: int = 8
    embed_features: int | None = None
    layer_features: int | None = None
    activation: str = "lrelu"
    lr_multiplier: float = 0.01


@dataclasses.dataclass(frozen=True)
class EpilogueConfig(Config):
    mbstd_group_size: int | None = 4  # minibatch-stddev group (None = whole batch)
    mbstd_num_channels: int = 1
    activation: str = "lrelu"


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig(Config):
    c_dim: int = 0
    img_resolution: int = 1024
    img_channels: int = 3
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None  # class projection size (default: channels at 4x4)
    block: DBlockConfig = DBlockConfig()
    mapping: DMappingConfig = DMappingConfig()
    epilogue: EpilogueConfig = EpilogueConfig()

    def __post_init__(self):
        check_resolution(self.img_resolution, "img_resolution")
        if self.architecture not in ("resnet", "skip", "orig"):
            raise ConfigError(f"architecture={self.architecture!r}: use resnet, skip or orig")


@dataclasses.dataclass(frozen=True)
class TrainingDefaults(Config):
    """Hyper-parameters the ADA paper ties to each config (per reference batch)."""

    batch: int = 32
    mbstd: int = 4
    lrate: float = 0.002
    gamma: float = 10.0
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    style_mixing_prob: float = 0.9
    pl_weight: float = 2.0


@dataclasses.dataclass(frozen=True)
class Preset(Config):
    name: str
    description: str
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    training: TrainingDefaults


def check_resolution(res: int, name: str) -> None:
    if res not in RESOLUTIONS:
        raise ConfigError(f"{name}={res}: must be a power of two between 16 and 1024")


# (description, resolution, z/w dim, mapping layers, channel_base, channel_max, fp16 res, training)
_PRESETS = {
    "tiny": ("tests: 32 px, a few thousand parameters per layer", 32, 32, 2, 256, 32, 0,
             TrainingDefaults(batch=4, mbstd=2, lrate=0.0025, gamma=0.0512, ema_kimg=1.0, ema_rampup=0.05)),
    # channel_base 1024: 8 channels at 128 px, 16 at 64 ... 256 at 4 px. The high-resolution layers dominate the
    # cost of both rendering and training on a CPU (see docs/default-model.md).
    "cpu128": ("default model: 128 px sized to render >= 30 images/s on 2 CPU cores", 128, 256, 4, 1024, 256, 0,
               TrainingDefaults(batch=16, mbstd=4, lrate=0.0025, gamma=0.2048, ema_kimg=5.0, ema_rampup=0.05)),
    "paper256": ("ADA paper config for 256 px (channel_base 16384, mapping 8)", 256, 512, 8, 16384, 512, 4,
                 TrainingDefaults(batch=64, mbstd=8, lrate=0.0025, gamma=1.0, ema_kimg=20.0)),
    "paper512": ("ADA paper config for 512 px", 512, 512, 8, 32768, 512, 4,
                 TrainingDefaults(batch=64, mbstd=8, lrate=0.0025, gamma=0.5, ema_kimg=20.0)),
    "paper1024": ("ADA paper config for 1024 px (the exhibition's config)", 1024, 512, 8, 32768, 512, 4,
                  TrainingDefaults(batch=32, mbstd=4, lrate=0.002, gamma=2.0, ema_kimg=10.0)),
    "stylegan2": ("StyleGAN2 config-f, 1024 px", 1024, 512, 8, 32768, 512, 4,
                  TrainingDefaults(batch=32, mbstd=4, lrate=0.002, gamma=10.0, ema_kimg=10.0)),
}


def preset_names() -> list[str]:
    return list(_PRESETS)


def get_preset(name: str, resolution: int | None = None, img_channels: int = 3, c_dim: int = 0) -> Preset:
    """A preset by name, optionally re-targeted to another resolution / channel count / class count."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(_PRESETS)}")
    desc, res, dim, layers, base, cmax, fp16, train = _PRESETS[name]
    res = resolution or res
    check_resolution(res, "resolution")
    # As in the ADA paper configs: the top resolutions may run in fp16 with activations clamped to 256.
    # Reduced precision is only used when a caller opts in (see Generator.synthesis precision).
    conv_clamp = 256 if fp16 else None
    gen = GeneratorConfig(
        z_dim=dim, c_dim=c_dim, w_dim=dim, img_resolution=res, img_channels=img_channels,
        mapping=MappingConfig(num_layers=layers),
        synthesis=SynthesisConfig(channel_base=base, channel_max=cmax, num_fp16_res=fp16, conv_clamp=conv_clamp),
    )
    disc = DiscriminatorConfig(
        c_dim=c_dim, img_resolution=res, img_channels=img_channels, channel_base=base, channel_max=cmax,
        num_fp16_res=fp16, conv_clamp=conv_clamp, epilogue=EpilogueConfig(mbstd_group_size=train.mbstd),
    )
    return Preset(name=name, description=desc, generator=gen, discriminator=disc, training=train)


def num_ws(res: int) -> int:
    """Number of w vectors the synthesis network consumes at this resolution (skip architecture)."""
    return int(math.log2(res)) * 2 - 2

"""StyleGAN2 networks, configs and presets."""

from .config import (
                     DiscriminatorConfig,
                     GeneratorConfig,
                     MappingConfig,
                     Preset,
                     SynthesisConfig,
                     get_preset,
                     preset_names,
)
from .discriminator import Discriminator
from .generator import Generator, style_mix, truncate

__all__ = ["DiscriminatorConfig", "GeneratorConfig", "MappingConfig", "Preset", "SynthesisConfig", "get_preset",
           "preset_names", "Discriminator", "Generator", "style_mix", "truncate"]

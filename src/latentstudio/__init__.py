"""latentstudio: a studio for GAN latent-space art (StyleGAN2 training, walks, projection, installations)."""

__version__ = "0.1.0"

"""The VGG16 convolution stack in pure PyTorch, for perceptual distances.

The weights come from files people already have (see `features.readers`); this module only runs them.
Channel widths are taken from the weights, so a VGG16-shaped net with fewer channels (the tiny nets the
tests write) runs through the same code as the real one.

Distances follow LPIPS (Zhang et al. 2018): at the last ReLU of each block (relu1_2 ... relu5_3) the
features are scaled to unit length along channels, the squared differences are weighted per channel (the
learned LPIPS "lin" weights when the file has them, else 1), summed over channels, averaged over space and
summed over blocks. That is what NVIDIA's projector minimises with its vgg16.pt.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

BLOCKS = (2, 2, 3, 3, 3)  # convolutions per block
TAP_NAMES = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
MAX_SIDE = 256  # larger images are area-downsampled first, as NVIDIA's projector does (VGG saw ~224 px)


@dataclasses.dataclass(frozen=True)
class InputConvention:
    """How a VGG16 expects its input. Caffe-trained weights (the original VGG16, HED, Keras) take BGR in
    0..255 minus the mean pixel; torchvision's take RGB in 0..1 normalised by ImageNet mean and std."""

    name: str
    bgr: bool
    scale: float  # multiplies images in [0, 1]
    mean: tuple[float, float, float]  # in the network's channel order, after scaling
    std: tuple[float, float, float]


CAFFE_BGR = InputConvention("caffe-bgr", True, 255.0, (104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0))
IMAGENET_RGB = InputConvention("imagenet-rgb", False, 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class VGG16Features(torch.nn.Module):
    """Frozen VGG16 convolutions -> features at the end of each block (up to `blocks` blocks).

    convs: 13 (weight [O, I, 3, 3], bias [O]) pairs. lin: optional per-block LPIPS channel weights [C].
    pool_ceil: round pooled sizes up (Keras 'same' max-pooling) instead of down (Caffe/torchvision).
    """

    def __init__(self, convs, convention: InputConvention, lin=None, pool_ceil: bool = False, blocks: int = 5,
                 name: str = "vgg16"):
        super().__init__()
        if len(convs) != sum(BLOCKS):
            raise ValueError(f"VGG16 has {sum(BLOCKS)} convolutions, got {len(convs)}")
        if not 1 <= blocks <= len(BLOCKS):
            raise ValueError(f"blocks={blocks}: use 1..{len(BLOCKS)}")
        self.convention, self.pool_ceil, self.blocks, self.name = convention, pool_ceil, blocks, name
        used = sum(BLOCKS[:blocks])
        for i, (w, b) in enumerate(convs[:used]):
            self.register_buffer(f"w{i}", torch.as_tensor(w, dtype=torch.float32).clone())
            self.register_buffer(f"b{i}", torch.as_tensor(b, dtype=torch.float32).clone())
        self.has_lin = lin is not None
        for k in range(blocks):
            weight = torch.as_tensor(lin[k], dtype=torch.float32).reshape(-1) if lin is not None else \
                torch.ones(self.widths[k])
            self.register_buffer(f"lin{k}", weight.clone())
        self.register_buffer("mean", torch.tensor(convention.mean).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(convention.std).reshape(1, 3, 1, 1), persistent=False)

    @property
    def widths(self) -> list[int]:
        """Output channels of each used block."""
        ends = [sum(BLOCKS[:k + 1]) - 1 for k in range(self.blocks)]
        return [getattr(self, f"w{i}").shape[0] for i in ends]

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Generator images [N, C, H, W] in [-1, 1] (C = 1 or 3) -> the network's input convention."""
        x = images.to(torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if max(x.shape[2], x.shape[3]) > MAX_SIDE:
            x = F.interpolate(x, size=(MAX_SIDE, MAX_SIDE), mode="area")
        x = (x + 1) * (self.convention.scale / 2)
        if self.convention.bgr:
            x = x.flip(1)
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Features after the last ReLU of each block, for images in [-1, 1]."""
        x = self.preprocess(images)
        taps, i = [], 0
        for k in range(self.blocks):
            if k > 0:
                x = F.max_pool2d(x, 2, 2, ceil_mode=self.pool_ceil)
            for _ in range(BLOCKS[k]):
                x = F.relu(F.conv2d(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"), padding=1))
                i += 1
            taps.append(x)
        return taps

    def distance(self, feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS-style distance per sample [N] between two feature lists (b may have batch size 1)."""
        total = 0
        for k, (fa, fb) in enumerate(zip(feats_a, feats_b, strict=True)):
            diff = unit_channels(fa) - unit_channels(fb)
            lin = getattr(self, f"lin{k}").reshape(1, -1, 1, 1)
            total = total + (diff.square() * lin).sum(dim=1).mean(dim=[1, 2])
        return total

    def extra_repr(self) -> str:
        return (f"name={self.name}, input={self.convention.name}, blocks={self.blocks}, widths={self.widths}, "
                f"lpips_lin={self.has_lin}")


def unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Scale each spatial feature vector to unit length (LPIPS normalisation)."""
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)

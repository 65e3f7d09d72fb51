"""StyleGAN2 discriminator: residual blocks, minibatch standard deviation, optional class projection.

Module and parameter names match NVIDIA's stylegan2-ada-pytorch (`b64.conv0.weight`, `b4.fc.bias`, ...).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import ops
from .config import DiscriminatorConfig, DMappingConfig, MappingConfig
from .generator import MappingNetwork
from .layers import Conv2dLayer, FullyConnectedLayer, minibatch_stddev, reduced_dtype


class DiscriminatorBlock(torch.nn.Module):
    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels, first_layer_idx,
                 architecture="resnet", activation="lrelu", resample_filter=(1, 3, 3, 1), conv_clamp=None,
                 use_fp16=False, freeze_layers=0):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter), persistent=False)
        self.num_layers = 0

        def trainable():
            # Layers before `freeze_layers` (counted from the image side) become constant buffers.
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        kw = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **kw)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **kw)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
                                 resample_filter=resample_filter, **kw)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    trainable=trainable(), resample_filter=resample_filter)

    def forward(self, x, img, precision=None):
        device = x.device if x is not None else img.device  # resnet/orig: img is None after the first block
        dtype = reduced_dtype(precision, device) if self.use_fp16 else torch.float32
        if x is not None:
            x = x.to(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            y = self.fromrgb(img.to(dtype))
            x = x + y if x is not None else y
            img = ops.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(self, in_channels, cmap_dim, resolution, img_channels, architecture="resnet",
                 mbstd_group_size=4, mbstd_num_channels=1, activation="lrelu", conv_clamp=None):
        super().__init__()
        self.cmap_dim, self.architecture = cmap_dim, architecture
        self.mbstd_group_size, self.mbstd_num_channels = mbstd_group_size, mbstd_num_channels
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3,
                                activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap):
        x = x.to(torch.float32)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd_num_channels > 0:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            # Projection discriminator: score = <features, class embedding> / sqrt(dim).
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(torch.nn.Module):
    """images [N, C, H, W] (+ classes) -> realness logits [N, 1]."""

    def __init__(self, config: DiscriminatorConfig):
        super().__init__()
        self.config = config
        cfg = config
        self.c_dim, self.img_resolution, self.img_channels = cfg.c_dim, cfg.img_resolution, cfg.img_channels
        log2 = int(math.log2(cfg.img_resolution))
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = {r: min(cfg.channel_base // r, cfg.channel_max) for r in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
        cmap_dim = cfg.cmap_dim if cfg.cmap_dim is not None else channels[4]
        cmap_dim = cmap_dim if cfg.c_dim > 0 else 0
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < cfg.img_resolution else 0, channels[res], channels[res // 2], res,
                cfg.img_channels, layer_idx, architecture=cfg.architecture, activation=cfg.block.activation,
                resample_filter=cfg.block.resample_filter, conv_clamp=cfg.conv_clamp,
                use_fp16=res >= fp16_resolution, freeze_layers=cfg.block.freeze_layers)
            self.add_module(f"b{res}", block)
            layer_idx += block.num_layers
        if cfg.c_dim > 0:
            self.mapping = MappingNetwork(0, cfg.c_dim, cmap_dim, None, _as_mapping(cfg.mapping))
        ep = cfg.epilogue
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim, 4, cfg.img_channels, architecture=cfg.architecture,
                                        mbstd_group_size=ep.mbstd_group_size,
                                        mbstd_num_channels=ep.mbstd_num_channels, activation=ep.activation,
                                        conv_clamp=cfg.conv_clamp)

    def forward(self, img, c=None, precision=None):
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, precision=precision)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)


def _as_mapping(cfg: DMappingConfig) -> MappingConfig:
    return MappingConfig(num_layers=cfg.num_layers, embed_features=cfg.embed_features,
                         layer_features=cfg.layer_features, activation=cfg.activation,
                         lr_multiplier=cfg.lr_multiplier, w_avg_beta=None)

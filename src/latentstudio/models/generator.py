"""StyleGAN2 generator (Karras et al. 2020) with the ADA paper's configuration options.

    G = Generator(GeneratorConfig(...))
    ws = G.mapping(z, c, truncation_psi=0.7)          # [N, num_ws, w_dim]
    img = G.synthesis(ws, noise_mode="const")         # [N, C, H, W] in about [-1, 1]

Module and parameter names match NVIDIA's stylegan2-ada-pytorch (`mapping.fc0.weight`,
`synthesis.b64.conv0.affine.bias`, ...) so their weights map one to one.
"""

from __future__ import annotations

import math

import torch

from . import ops
from .config import GeneratorConfig, MappingConfig, SynthesisConfig
from .layers import Conv2dLayer, FullyConnectedLayer, modulated_conv2d, reduced_dtype, use_fused_modconv


class MappingNetwork(torch.nn.Module):
    """z (+ class embedding) -> w through `num_layers` fully connected layers; tracks the mean w."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, cfg: MappingConfig):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = cfg.num_layers
        self.w_avg_beta = cfg.w_avg_beta
        embed = cfg.embed_features if cfg.embed_features is not None else w_dim
        embed = embed if c_dim > 0 else 0
        hidden = cfg.layer_features if cfg.layer_features is not None else w_dim
        features = [z_dim + embed] + [hidden] * (cfg.num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed)
        for i in range(cfg.num_layers):
            self.add_module(f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation=cfg.activation,
                                                          lr_multiplier=cfg.lr_multiplier))
        if num_ws is not None and cfg.w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=None):
        x = None
        if self.z_dim > 0:
            x = ops.normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this model is conditional: pass c, a one-hot class tensor of size {self.c_dim}")
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        update = self.training if update_w_avg is None else update_w_avg
        if update and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x


def truncate(ws, w_avg, psi, cutoff=None):
    """Pull ws towards the mean w: w_avg + psi * (w - w_avg), on the first `cutoff` layers (all if None)."""
    if cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


def style_mix(ws_a, ws_b, crossover: int):
    """Coarse styles (layers < crossover) from ws_a, fine styles from ws_b."""
    out = ws_b.clone()
    out[:, :crossover] = ws_a[:, :crossover]
    return out


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution + per-pixel noise + bias + activation (optionally 2x upsampling)."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, up=1, use_noise=True, activation="lrelu",
                 resample_filter=(1, 3, 3, 1), conv_clamp=None, kernel_size=3):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter), persistent=False)
        self.padding = kernel_size // 2
        self.act_gain = ops.ACTIVATION_GAINS[activation]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode="random", fused_modconv=None, gain=1.0):
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        if fused_modconv is None:
            fused_modconv = use_fused_modconv(x, self.in_channels, self.training)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels, out_channels, w_dim, conv_clamp=None, kernel_size=1):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x, w, fused_modconv=None):
        styles = self.affine(w) * self.weight_gain
        if fused_modconv is None:
            fused_modconv = use_fused_modconv(x, x.shape[1], self.training)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return ops.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(torch.nn.Module):
    """One resolution: [const | upsampling conv0] -> conv1 -> toRGB added to the upsampled image."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, cfg: SynthesisConfig,
                 use_fp16=False):
        super().__init__()
        self.in_channels, self.resolution, self.is_last = in_channels, resolution, is_last
        self.architecture = cfg.architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", ops.setup_filter(cfg.resample_filter), persistent=False)
        layer_kw = dict(w_dim=w_dim, resolution=resolution, use_noise=cfg.use_noise, activation=cfg.activation,
                        conv_clamp=cfg.conv_clamp, resample_filter=cfg.resample_filter)
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kw)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kw)
        self.num_conv += 1
        if is_last or cfg.architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=cfg.conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and cfg.architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=cfg.resample_filter)

    def forward(self, x, img, ws, noise_mode="random", precision=None, fused_modconv=None):
        w_iter = iter(ws.unbind(dim=1))
        dtype = reduced_dtype(precision, ws.device) if self.use_fp16 else torch.float32
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv,
                           gain=math.sqrt(0.5))
            x = y.add_(x)
        else:
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused_modconv=fused_modconv)
        if img is not None:
            img = ops.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img.add_(y) if img is not None else y
        return x, img


class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, C, H, W]."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, cfg: SynthesisConfig):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {r: min(cfg.channel_base // r, cfg.channel_max) for r in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - cfg.num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_ch = channels[res // 2] if res > 4 else 0
            is_last = res == img_resolution
            block = SynthesisBlock(in_ch, channels[res], w_dim, res, img_channels, is_last, cfg,
                                   use_fp16=res >= fp16_resolution)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            self.add_module(f"b{res}", block)

    def forward(self, ws, noise_mode=None, precision=None, fused_modconv=None):
        """noise_mode: 'const' (fixed per-layer noise, deterministic), 'random' or 'none';
        default 'random' while training, 'const' otherwise. precision: 'fp32' (default), 'fp16', 'bf16'
        for the blocks the config marks with num_fp16_res."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws has shape {list(ws.shape)}; expected [N, {self.num_ws}, {self.w_dim}]")
        if noise_mode is None:
            noise_mode = "random" if self.training else "const"
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode={noise_mode!r}: use const, random or none")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur, noise_mode=noise_mode, precision=precision, fused_modconv=fused_modconv)
        return img


class Generator(torch.nn.Module):
    """StyleGAN2 generator: `mapping(z, c, truncation_psi) -> ws`, `synthesis(ws) -> images`."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.synthesis = SynthesisNetwork(config.w_dim, config.img_resolution, config.img_channels,
                                          config.synthesis)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, self.num_ws, config.mapping)

    def forward(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None, noise_mode=None, precision=None):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, precision=precision)

    @property
    def device(self) -> torch.device:
        return self.synthesis.b4.const.device

"""StyleGAN2 synthesis network: ws [N, num_ws, w_dim] -> images [N, C, H, W].

Two execution paths compute the same images:

- the reference path (NVIDIA's formulation, `impl='ref'` makes even the resampling ops literal), used
  whenever autograd records the computation (training, projection);
- the inference path (`impl='auto'` without autograd): per layer, modulation, demodulation, noise, bias,
  activation and gain run as one convolution plus two in-place passes (layers.modulated_conv2d_inference),
  and on CPUs the high-resolution blocks run in channels-last layout (oneDNN's transposed convolution is
  twice as fast in it) and in batch chunks small enough for the allocator to recycle memory instead of
  faulting in fresh pages for every tensor. Measured in bench/generator.py, explained in docs/performance.md.
"""

from __future__ import annotations

import math

import torch

from . import ops
from .config import SynthesisConfig
from .inference import cached, demodulation, modconv_scaled, needs_autograd, torgb_inference
from .layers import Conv2dLayer, FullyConnectedLayer, modulated_conv2d, reduced_dtype, use_fused_modconv

# CPU execution plan of the inference path (bench/generator.py measures the choices).
CHANNELS_LAST_MIN_RES = 64  # oneDNN's transposed convolution is ~2x faster in NHWC at these sizes
CHUNK_BYTES = 16 << 20  # glibc recycles freed blocks up to 32 MiB; bigger ones are fresh page faults each time


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

    def forward(self, x, w, noise_mode="random", fused_modconv=None, gain=1.0, impl="auto", noise_input=None):
        """noise_input: the N(0, 1) noise [N, 1, H, W] to use in random mode (default: drawn here)."""
        styles = self.affine(w)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        if impl != "ref" and x.dtype == torch.float32 and not needs_autograd(
                x, styles, self.weight, self.bias, self.noise_strength if self.use_noise else None):
            return self._forward_inference(x, styles, noise_mode, noise_input, self.act_gain * gain, clamp,
                                           fused_modconv)
        noise = self._noise(x, noise_mode, noise_input)
        if fused_modconv is None:
            fused_modconv = use_fused_modconv(x, self.in_channels, self.training)
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv, impl=impl)
        return ops.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def _forward_inference(self, x, styles, noise_mode, noise_input, g, clamp, fused_modconv):
        """inference.modulated_conv2d_inference with the gain-scaled bias and constant noise cached."""
        dcoefs = demodulation(styles, self.weight, g, cache=self)
        bias = cached(self, f"_bias_{g!r}", (self.bias,), lambda b: b * g)
        noise = None
        if self.use_noise and noise_mode == "const":
            noise = cached(self, f"_noise_{g!r}", (self.noise_const, self.noise_strength), lambda c, s: c * (s * g))
        elif self.use_noise and noise_mode == "random":
            noise = self._noise(x, noise_mode, noise_input) * g
        return modconv_scaled(x, self.weight, styles, dcoefs, bias, noise, self.up, self.padding,
                              self.resample_filter, self.up == 1, self.activation, clamp, fused_modconv, self)

    def _noise(self, x, noise_mode, noise_input):
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return self.noise_const * self.noise_strength
        if noise_input is None:
            noise_input = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                      dtype=x.dtype)
        return noise_input * self.noise_strength


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels, out_channels, w_dim, conv_clamp=None, kernel_size=1):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x, w, fused_modconv=None, impl="auto"):
        styles = self.affine(w) * self.weight_gain
        if impl != "ref" and x.dtype == torch.float32 and not needs_autograd(x, styles, self.weight):
            return torgb_inference(x, self.weight, styles, self.bias, self.conv_clamp)
        if fused_modconv is None:
            fused_modconv = use_fused_modconv(x, x.shape[1], self.training)
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv, impl=impl)
        return ops.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(torch.nn.Module):
    """One resolution: [const | upsampling conv0] -> conv1 -> toRGB added to the upsampled image."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, cfg: SynthesisConfig,
                 use_fp16=False):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.is_last, self.architecture, self.use_fp16 = is_last, cfg.architecture, use_fp16
        self.register_buffer("resample_filter", ops.setup_filter(cfg.resample_filter), persistent=False)
        # The same filter as 1D taps: the inference path upsamples the image separably, phase by phase.
        self.register_buffer("resample_taps", ops.setup_filter(cfg.resample_filter, separable=True), persistent=False)
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

    def noise_layers(self) -> list[SynthesisLayer]:
        """The layers that draw random noise, in the order they run."""
        layers = [self.conv1] if self.in_channels == 0 else [self.conv0, self.conv1]
        return [layer for layer in layers if layer.use_noise]

    def forward(self, x, img, ws, noise_mode="random", precision=None, fused_modconv=None, impl="auto",
                noise_inputs=None):
        w_iter = iter(ws.unbind(dim=1))
        noise_iter = iter(noise_inputs or [])
        kw = dict(noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
        layer_noise = (lambda layer: next(noise_iter) if noise_inputs is not None and layer.use_noise else None)
        dtype = reduced_dtype(precision, ws.device) if self.use_fp16 else torch.float32
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), noise_input=layer_noise(self.conv1), **kw)
        elif self.architecture == "resnet":
            x = x.to(dtype)
            y = self.skip(x, gain=math.sqrt(0.5), impl=impl)
            x = self.conv0(x, next(w_iter), noise_input=layer_noise(self.conv0), **kw)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), noise_input=layer_noise(self.conv1), **kw)
            x = y.add_(x)
        else:
            x = x.to(dtype)
            x = self.conv0(x, next(w_iter), noise_input=layer_noise(self.conv0), **kw)
            x = self.conv1(x, next(w_iter), noise_input=layer_noise(self.conv1), **kw)
        if img is not None:
            img = ops.upsample2d(img, self.resample_filter if impl == "ref" else self.resample_taps, impl=impl)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv, impl=impl).to(torch.float32)
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

    def forward(self, ws, noise_mode=None, precision=None, fused_modconv=None, impl="auto"):
        """noise_mode: 'const' (fixed per-layer noise, deterministic), 'random' or 'none';
        default 'random' while training, 'const' otherwise. precision: 'fp32' (default), 'fp16', 'bf16'
        for the blocks the config marks with num_fp16_res. impl: 'auto' (fast paths where they apply) or
        'ref' (NVIDIA's reference formulation, for checking the fast paths)."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws has shape {list(ws.shape)}; expected [N, {self.num_ws}, {self.w_dim}]")
        if noise_mode is None:
            noise_mode = "random" if self.training else "const"
        if noise_mode not in ("const", "random", "none"):
            raise ValueError(f"noise_mode={noise_mode!r}: use const, random or none")
        if impl not in ("auto", "ref"):
            raise ValueError(f"impl={impl!r}: use auto or ref")
        ws = ws.to(torch.float32)
        blocks, block_ws, w_idx = [], [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            blocks.append(block)
            block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        kw = dict(noise_mode=noise_mode, precision=precision, fused_modconv=fused_modconv, impl=impl)
        cpu_fast = (impl == "auto" and ws.device.type == "cpu" and precision in (None, "fp32")
                    and not needs_autograd(ws, blocks[0].const))
        split = _chunk_plan(blocks, ws.shape[0]) if cpu_fast else None
        x = img = None
        for i, (block, cur) in enumerate(zip(blocks, block_ws, strict=True)):
            if split is not None and i == split[0]:
                return _run_chunked(blocks[i:], block_ws[i:], x, img, split[1], kw)
            x, img = block(_layout(x, block, cpu_fast), img, cur, **kw)
        return img.contiguous()


def _layout(x, block, cpu_fast):
    if cpu_fast and x is not None and block.resolution >= CHANNELS_LAST_MIN_RES:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _chunk_plan(blocks, n):
    """(first block to run in chunks, chunk size), or None when every activation fits CHUNK_BYTES."""
    sizes = [b.out_channels * b.resolution**2 * 4 for b in blocks]
    start = next((i for i, size in enumerate(sizes) if n * size > CHUNK_BYTES), None)
    if start is None:
        return None
    chunk = max(1, CHUNK_BYTES // max(sizes[start:]))
    return (start, chunk) if chunk < n else None


def _run_chunked(blocks, block_ws, x, img, chunk, kw):
    """Run the remaining blocks on slices of the batch; random noise is drawn up front, layer by layer for
    the whole batch, so the images equal those of the unchunked path for the same RNG state."""
    n = block_ws[0].shape[0]
    noise = None
    if kw["noise_mode"] == "random":
        noise = [[torch.randn([n, 1, layer.resolution, layer.resolution], device=block_ws[0].device)
                  for layer in block.noise_layers()] for block in blocks]
    images = []
    for j in range(0, n, chunk):
        xc = x[j:j + chunk] if x is not None else None
        ic = img[j:j + chunk] if img is not None else None
        for k, (block, cur) in enumerate(zip(blocks, block_ws, strict=True)):
            block_noise = [t[j:j + chunk] for t in noise[k]] if noise is not None else None
            xc, ic = block(_layout(xc, block, True), ic, cur[j:j + chunk], noise_inputs=block_noise, **kw)
        images.append(ic)
    return torch.cat(images).contiguous()

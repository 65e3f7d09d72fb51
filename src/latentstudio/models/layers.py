"""Equalised-learning-rate layers and the modulated convolution of StyleGAN2.

Parameters are stored unscaled (N(0,1) / lr_multiplier) and scaled at run time by `weight_gain`, exactly
as NVIDIA's networks do, so their state dicts load one to one.
"""

from __future__ import annotations

import math

import torch

from . import ops
from .inference import cached


class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1.0,
                 bias_init=0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        if self.activation == "linear" and self.bias is not None and x.dtype == torch.float32 \
                and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad
                                                      or self.bias.requires_grad)):
            # Inference: the scaled weight and bias only change when the parameters do (cached).
            wt, b = cached(self, "_scaled", (self.weight, self.bias), lambda w, bb: (
                (w * self.weight_gain).t(), bb * self.bias_gain if self.bias_gain != 1 else bb))
            return torch.addmm(b, x, wt)
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self):
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1, down=1,
                 resample_filter=(1, 3, 3, 1), conv_clamp=None, trainable=True):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter), persistent=False)
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ops.ACTIVATION_GAINS[activation]
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", bias)

    def forward(self, x, gain=1.0, impl="auto"):
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = ops.conv2d_resample(x, w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down,
                                padding=self.padding, flip_weight=(self.up == 1), impl=impl)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self):
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.weight.shape[-1]}, "
                f"up={self.up}, down={self.down}, act={self.activation}")


def use_fused_modconv(x: torch.Tensor, in_channels: int, training: bool) -> bool:
    """The modulated-convolution variant of the reference path (see modulated_conv2d).

    Fused = one grouped convolution with per-sample weights (NVIDIA's inference default); unfused = scale the
    activations by the styles, one convolution with the shared weight over the whole batch, rescale. The
    unfused path is what NVIDIA trains with, and on CPUs one large convolution beats many small ones, so the
    reference path only fuses single images (where both are one convolution). The inference path makes its
    own choice (modulated_conv2d_inference).
    """
    if training:
        return False
    if x.shape[0] == 1:
        return True
    return x.device.type != "cpu" and x.dtype == torch.float32


def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, resample_filter=None, demodulate=True,
                     flip_weight=True, fused_modconv=True, impl="auto"):
    """Convolution whose input channels are scaled per sample by `styles`, then demodulated.

    x: [N, I, H, W], weight: [O, I, k, k], styles: [N, I]. Returns [N, O, H*up, W*up]. This is the reference
    path (NVIDIA's formulation, autograd-friendly); impl='ref' also makes the resampling ops literal.
    """
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise so the intermediate products stay inside fp16's range (scale cancels out).
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3],
                                                                            keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = None
    if demodulate:
        # ||w * s||_2 per output channel, computed without materialising the per-sample weights.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = ops.conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding,
                                flip_weight=flip_weight, impl=impl)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = ops.conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, padding=padding, groups=n,
                            flip_weight=flip_weight, impl=impl)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def minibatch_stddev(x: torch.Tensor, group_size: int | None, num_channels: int = 1) -> torch.Tensor:
    """Append the per-group standard deviation of features as extra channels (ProGAN/StyleGAN2)."""
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size is not None else n
    if n % g:
        raise ValueError(f"batch size {n} must be divisible by the minibatch-stddev group size {g}")
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = y - y.mean(dim=0)
    y = y.square().mean(dim=0)
    y = (y + 1e-8).sqrt()
    y = y.mean(dim=[2, 3, 4])
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


def reduced_dtype(precision: str | None, device: torch.device) -> torch.dtype:
    """dtype for blocks allowed to run in reduced precision; fp32 unless the caller opts in."""
    table = {None: torch.float32, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in table:
        raise ValueError(f"precision={precision!r}: use fp32, fp16 or bf16")
    dtype = table[precision]
    if dtype == torch.float16 and device.type == "cpu":
        # fp16 convolutions are emulated on CPU and far slower than fp32; bf16 is the CPU option.
        raise ValueError("precision='fp16' needs a CUDA device; on CPU use 'bf16' or 'fp32'")
    return dtype


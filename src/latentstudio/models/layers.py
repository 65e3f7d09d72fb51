"""Equalised-learning-rate layers and the modulated convolution of StyleGAN2.

Parameters are stored unscaled (N(0,1) / lr_multiplier) and scaled at run time by `weight_gain`, exactly
as NVIDIA's networks do, so their state dicts load one to one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import ops


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


def needs_autograd(*tensors: torch.Tensor) -> bool:
    """Whether autograd records this computation (then in-place tricks are off limits)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


# Inference-path choices (measured in bench/generator.py, see docs/performance.md).
GEMM_UPCONV_MIN_CHANNELS = 256  # transposed conv as one GEMM + col2im: wins with many channels and few pixels
GEMM_UPCONV_MAX_PIXELS = 2048  # (batch x input pixels); above, oneDNN's own transposed convolution wins
EPILOGUE_BAND_BYTES = 1 << 20  # run the in-place epilogue in row bands of about this size (L2-resident)


def _cached(module, name: str, fn):
    """fn(weight) cached on the module, keyed on the weight's identity and version counter (every in-place
    update — optimizer step, load_state_dict, copy_ — bumps it, so a changed weight is never served stale).
    module=None computes without caching."""
    if module is None:
        return None
    weight = module.weight
    key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
    cached = module.__dict__.get(name)
    if cached is not None and cached[0] == key:
        return cached[1]
    with torch.no_grad():
        value = fn(weight.detach())
    module.__dict__[name] = (key, value)
    return value


def _wsq(w):
    return w.square().sum(dim=[2, 3])


def _wt(w):
    return w.transpose(0, 1).contiguous()


def _w2(w):
    return w.permute(1, 2, 3, 0).reshape(w.shape[1], -1).contiguous()


def squared_weight_norms(module: torch.nn.Module) -> torch.Tensor:
    """sum over the kernel of weight^2, [O, I]: the demodulation statistics (cached)."""
    return _cached(module, "_wsq_cache", _wsq)


def transposed_weight(module: torch.nn.Module) -> torch.Tensor:
    """weight.transpose(0, 1) made contiguous, the layout conv_transpose2d wants (cached)."""
    return _cached(module, "_wt_cache", _wt)


def gemm_weight(module: torch.nn.Module) -> torch.Tensor:
    """weight as [I, kh * kw * O], the operand of ops.conv_transpose2d_gemm (cached)."""
    return _cached(module, "_w2_cache", _w2)


def activate_(x: torch.Tensor, act: str) -> torch.Tensor:
    """In-place activation without gain (the callers fold the positive gain into the preceding scale)."""
    if act == "lrelu":
        return F.leaky_relu_(x, ops.LRELU_ALPHA)
    if act == "relu":
        return F.relu_(x)
    if act != "linear":
        raise ValueError(f"unknown activation {act!r}; use linear, relu or lrelu")
    return x


def modulated_conv2d_inference(x, weight, styles, bias, noise=None, up=1, padding=0, resample_filter=None,
                               flip_weight=True, gain=1.0, act="lrelu", clamp=None, fold=None, cache=None):
    """Inference path of a demodulated synthesis layer: modulated conv + noise + bias + activation + gain.

    Equal to modulated_conv2d followed by bias_act, with fewer passes over memory: the activation gain is
    folded into the demodulation coefficients and the bias (act(g * a) = g * act(a) for g > 0), the
    post-convolution scale and bias are one addcmul (or the convolution's own bias), and noise, activation
    and clamp run in place, band by band while the band sits in cache. fold=True folds styles and
    demodulation into the weight of a single image (cheaper than two passes over big activations at high
    resolution); fold=False scales the activations around one convolution over the whole batch.
    cache: the layer module, to reuse weight-derived tensors between calls (optional).
    """
    n, in_channels, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    wsq = _cached(cache, "_wsq_cache", _wsq) if cache is not None else _wsq(weight)
    dcoefs = (styles.square() @ wsq.t() + 1e-8).rsqrt() * gain  # [N, O]
    bias = bias * gain
    if fold is None:
        fold = n == 1 and out_channels * in_channels * kh * kw < (in_channels + out_channels * up * up) * h * w
    if fold and n == 1:
        scale = styles.reshape(1, -1, 1, 1) * dcoefs.reshape(-1, 1, 1, 1)  # [O, I, 1, 1]
        if up == 1:
            y = F.conv2d(x, weight * scale if flip_weight else (weight * scale).flip([2, 3]), bias, padding=padding)
        else:  # write the folded weight straight into conv_transpose layout
            wt = torch.mul(weight.transpose(0, 1), scale.transpose(0, 1),
                           out=x.new_empty([in_channels, out_channels, kh, kw]))
            y = _upconv(x, wt, resample_filter, up, padding, flip_weight, bias)
    else:
        y = _unfused(x, weight, styles, up, padding, resample_filter, flip_weight, cache)
        y = torch.addcmul(bias.reshape(1, -1, 1, 1), y, dcoefs.reshape(n, -1, 1, 1), out=y)
    return _epilogue_(y, noise, gain, act, clamp)


def _unfused(x, weight, styles, up, padding, f, flip_weight, cache):
    """Convolution of the style-scaled activations with the shared weight (whole batch at once)."""
    n, in_channels, h, w = x.shape
    if up == 1:
        return ops.conv2d_resample(x * styles.reshape(n, -1, 1, 1), weight, padding=padding, flip_weight=flip_weight)
    if (x.device.type == "cpu" and not flip_weight and in_channels >= GEMM_UPCONV_MIN_CHANNELS
            and n * h * w <= GEMM_UPCONV_MAX_PIXELS):
        # Scale and change layout in one pass: the GEMM reads the activations as [pixels, channels].
        xs = torch.mul(x, styles.reshape(n, -1, 1, 1), out=torch.empty(x.shape, dtype=x.dtype, device=x.device,
                                                                      memory_format=torch.channels_last))
        w2 = _cached(cache, "_w2_cache", _w2) if cache is not None else _w2(weight)
        return ops.upconv2d_gemm(xs, w2, f, kh=weight.shape[2], kw=weight.shape[3], up=up, padding=padding)
    wt = _cached(cache, "_wt_cache", _wt) if cache is not None else _wt(weight)
    return _upconv(x * styles.reshape(n, -1, 1, 1), wt, f, up, padding, flip_weight, None)


def _epilogue_(y, noise, gain, act, clamp):
    """y += gain * noise; activation; clamp — in place, in row bands that stay in cache between the ops."""
    rows = y.shape[2]
    band = max(1, EPILOGUE_BAND_BYTES // max(1, y[:, :, :1].numel() * y.element_size()))
    for r in range(0, rows, band):
        part = y[:, :, r:r + band] if band < rows else y
        if noise is not None:
            part.add_(noise[..., r:r + band, :] if band < rows else noise, alpha=gain)
        activate_(part, act)
        if clamp is not None:
            part.clamp_(-clamp, clamp)
    return y


def _upconv(x, wt, f, up, padding, flip_weight, bias):
    if flip_weight:  # NVIDIA's layers always upsample with flip_weight=False; keep the general case exact
        wt = wt.flip([2, 3])
    return ops.upconv2d_transposed_weight(x, wt, f, up=up, padding=padding, bias=bias)


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


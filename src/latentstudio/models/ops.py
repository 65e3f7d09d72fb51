"""Low-level tensor ops of StyleGAN2 in pure PyTorch.

Semantics follow NVIDIA's stylegan2-ada-pytorch `torch_utils/ops` (upfirdn2d, bias_act, conv2d_resample)
so that their trained weights produce the same images here. No compiled extensions: every op is built
from standard PyTorch calls, which run on CPU and CUDA alike.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_ALPHA = 0.2
# Gain that keeps the activation's output variance equal to its input variance (He init argument).
ACTIVATION_GAINS = {"linear": 1.0, "relu": math.sqrt(2.0), "lrelu": math.sqrt(2.0)}


def setup_filter(taps, device=None) -> torch.Tensor:
    """2D FIR filter from 1D taps (outer product), normalised to unit sum, as NVIDIA's setup_filter."""
    f = torch.as_tensor(list(taps), dtype=torch.float32, device=device)
    if f.ndim == 1:
        f = torch.outer(f, f)
    return f / f.sum()


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def bias_act(x, b=None, act="linear", gain=None, clamp=None, dim=1):
    """Add bias, apply activation, scale by gain (default: the activation's own gain), clamp."""
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_ALPHA)
    elif act == "relu":
        x = F.relu(x)
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}; use linear, relu or lrelu")
    gain = ACTIVATION_GAINS[act] if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _depthwise(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Correlate every channel of x with the 2D filter f (no padding)."""
    c = x.shape[1]
    weight = f[None, None].to(x.dtype).expand(c, 1, *f.shape)
    return F.conv2d(x, weight, groups=c)


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), flip_filter=False, gain=1.0):
    """Upsample (zero insertion), pad, FIR filter, downsample — NVIDIA's upfirdn2d reference semantics.

    padding = (x0, x1, y0, y1); negative values crop.
    """
    n, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
    f = f * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    x = _depthwise(x, f)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x, f, up=2, gain=1.0):
    fw = f.shape[-1]
    p = [(fw + up - 1) // 2, (fw - up) // 2, (fw + up - 1) // 2, (fw - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, gain=gain * up * up)


def downsample2d(x, f, down=2, gain=1.0):
    fw = f.shape[-1]
    p = [(fw - down + 1) // 2, (fw - down) // 2, (fw - down + 1) // 2, (fw - down) // 2]
    return upfirdn2d(x, f, down=down, padding=p, gain=gain)


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    # F.conv2d computes correlation; flip_weight=False asks for a true convolution.
    if not flip_weight:
        w = w.flip([2, 3])
    op = F.conv_transpose2d if transpose else F.conv2d
    return op(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True):
    """2D convolution with optional 2x up/down-sampling through the FIR filter f.

    Same padding arithmetic and fast paths as NVIDIA's conv2d_resample: upsampling runs a strided
    transposed convolution followed by the filter at the output resolution (4x fewer MACs than
    convolving the upsampled image), downsampling filters first and then runs a strided convolution.
    """
    out_channels, in_per_group, kh, kw = w.shape
    fw = f.shape[-1] if f is not None else 1
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0, py1 = px0, px1
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0, py1 = px0, px1
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1))
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=(px0, px1, py0, py1), gain=up * up)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=(px0, px1, py0, py1))
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        return _conv_up(x, w, f, up, down, groups, flip_weight, (px0, px1, py0, py1))
    if px0 == px1 and px0 >= 0:
        return _conv(x, w, padding=px0, groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, f, padding=(px0, px1, py0, py1)) if f is not None else F.pad(x, [px0, px1, py0, py1])
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def _conv_up(x, w, f, up, down, groups, flip_weight, pads):
    out_channels, in_per_group, kh, kw = w.shape
    px0, px1, py0, py1 = pads
    if groups == 1:
        w = w.transpose(0, 1)
    else:
        w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
    x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up)
    if down > 1:
        x = upfirdn2d(x, f, down=down)
    return x

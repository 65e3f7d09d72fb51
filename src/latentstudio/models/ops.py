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


def setup_filter(taps, device=None, separable=False) -> torch.Tensor:
    """2D FIR filter from 1D taps (outer product), normalised to unit sum, as NVIDIA's setup_filter;
    separable=True returns the normalised 1D taps instead (the same filter, applied along x then y)."""
    f = torch.as_tensor(list(taps), dtype=torch.float32, device=device)
    if f.ndim == 1 and not separable:
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


def _depthwise(x: torch.Tensor, f: torch.Tensor, stride: int = 1, padding=0, transpose: bool = False, bias=None):
    """Correlate every channel of x with the 2D filter f (transpose: scatter through it, stride = upsampling)."""
    c = x.shape[1]
    weight = f[None, None].to(x.dtype).expand(c, 1, *f.shape)
    if transpose:
        return F.conv_transpose2d(x, weight, bias, stride=stride, groups=c)
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, groups=c)


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), flip_filter=False, gain=1.0, impl="auto"):
    """Upsample (zero insertion), pad, FIR filter, downsample — NVIDIA's upfirdn2d semantics.

    f: 2D filter, or 1D taps of a separable filter (applied along x, then y, as NVIDIA does for 1D filters).
    padding = (x0, x1, y0, y1); negative values crop. impl='ref' runs the literal definition; 'auto' computes
    the same numbers without the zeros: upsampling scatters each input pixel through the filter (a strided
    transposed depthwise convolution, 1/up^2 of the multiply-adds; for 1D taps, 2x upsampling is computed
    per output phase from shifted views), downsampling evaluates only the kept outputs (a strided
    convolution), and symmetric padding is left to the convolution instead of a copy.
    """
    if f.ndim == 1 and impl != "ref" and up == 2 and down == 1 and not flip_filter \
            and list(padding) == [(f.numel() + 1) // 2, (f.numel() - 2) // 2] * 2:
        t = (f * gain**0.5).tolist()
        return _upsample2x_phases(_upsample2x_phases(x, t, -1), t, -2)
    if impl == "ref" or f.ndim != 2 or (up > 1 and down > 1):
        return _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
    f = f * (gain ** (f.ndim / 2))
    if up > 1:
        return _upsample_fir(x, f if not flip_filter else f.flip([0, 1]), up, padding)
    if not flip_filter:
        f = f.flip([0, 1])
    px0, px1, py0, py1 = padding
    if px0 == px1 == py0 == py1 and px0 >= 0:
        return _depthwise(x, f, stride=down, padding=px0)
    x = F.pad(x, [px0, px1, py0, py1])  # negative values crop
    return _depthwise(x, f, stride=down)


def _upsample_fir(x, f, up, padding):
    """Zero-insert by `up`, pad, convolve with f: the transposed convolution gives the full convolution of the
    zero-inserted signal; the padding then selects (or zero-extends) the window NVIDIA's definition keeps."""
    fh, fw = f.shape
    n, c, h, w = x.shape
    y = _depthwise(x, f, stride=up, transpose=True)  # length up * (L - 1) + T along each axis
    px0, px1, py0, py1 = padding
    pads = [px0 - (fw - 1), px1 - (fw - up), py0 - (fh - 1), py1 - (fh - up)]
    if all(p <= 0 for p in pads):
        return y[:, :, -pads[2]: y.shape[2] + pads[3], -pads[0]: y.shape[3] + pads[1]]
    return F.pad(y, pads)


def _upsample2x_phases(x, taps, dim):
    """1D 2x upsampling along `dim` with upsample2d's padding (output length 2L), phase by phase: output
    sample 2j + q is a short dot product of input samples around j, so no zeros are stored or multiplied."""
    T, L = len(taps), x.shape[dim]
    s = T - 1 - (T + 1) // 2  # offset of the kept window in the full convolution
    pad = T // 2 + 1
    xp = F.pad(x, [pad, pad] if dim == -1 else [0, 0, pad, pad])

    def terms(q):
        return [(xp.narrow(dim, pad + (q + s - k) // 2, L), taps[k]) for k in range((q + s) % 2, T, 2)]

    if torch.is_grad_enabled() and x.requires_grad:  # differentiable: build the phases, then interleave
        phases = [sum(src * t for src, t in terms(q)) for q in (0, 1)]
        out = torch.stack(phases, dim=dim if dim == -1 else -2)
        return out.flatten(-2) if dim == -1 else out.flatten(-3, -2)
    shape = list(x.shape)
    shape[dim] = 2 * L
    out = x.new_empty(shape)
    for q in (0, 1):  # write each phase straight into its strided slots of the output
        dst = out[..., q::2] if dim == -1 else out[..., q::2, :]
        for i, (src, t) in enumerate(terms(q)):
            if i == 0:
                torch.mul(src, t, out=dst)
            else:
                dst.add_(src, alpha=t)
    return out


def _upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain):
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
    if f.ndim == 1:  # separable: along x, then along y
        x = _depthwise(_depthwise(x, f[None]), f[:, None])
    else:
        x = _depthwise(x, f)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x, f, up=2, gain=1.0, impl="auto"):
    fw = f.shape[-1]
    p = [(fw + up - 1) // 2, (fw - up) // 2, (fw + up - 1) // 2, (fw - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, gain=gain * up * up, impl=impl)


def downsample2d(x, f, down=2, gain=1.0, impl="auto"):
    fw = f.shape[-1]
    p = [(fw - down + 1) // 2, (fw - down) // 2, (fw - down + 1) // 2, (fw - down) // 2]
    return upfirdn2d(x, f, down=down, padding=p, gain=gain, impl=impl)


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    # F.conv2d computes correlation; flip_weight=False asks for a true convolution.
    if not flip_weight:
        w = w.flip([2, 3])
    op = F.conv_transpose2d if transpose else F.conv2d
    return op(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, impl="auto"):
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
        x = upfirdn2d(x, f, down=down, padding=(px0, px1, py0, py1), impl=impl)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=(px0, px1, py0, py1), gain=up * up, impl=impl)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=(px0, px1, py0, py1), impl=impl)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        return _conv_up(x, w, f, up, down, groups, flip_weight, (px0, px1, py0, py1), impl)
    if px0 == px1 and px0 >= 0:
        return _conv(x, w, padding=px0, groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, f, padding=(px0, px1, py0, py1), impl=impl) if f is not None else F.pad(x, [px0, px1, py0, py1])
    return _conv(x, w, groups=groups, flip_weight=flip_weight)


def _conv_up(x, w, f, up, down, groups, flip_weight, pads, impl):
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
    x = upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up * up, impl=impl)
    if down > 1:
        x = upfirdn2d(x, f, down=down, impl=impl)
    return x


def conv_transpose2d_gemm(x, w2, kh, kw, stride):
    """F.conv_transpose2d(x, w.transpose(0, 1), stride=stride) as one matrix product plus col2im.

    x: [N, I, H, W] in channels-last memory; w2 = w.permute(1, 2, 3, 0).reshape(I, kh * kw * O) for the
    conv-layout weight w [O, I, kh, kw]. Every input pixel times the weight gives its kh x kw output patch
    (one GEMM over all pixels, the efficient shape for a CPU BLAS when channels are many and pixels few),
    then the patches are summed into place. Returns [N, O, (H-1)*stride+kh, (W-1)*stride+kw], channels-last.
    """
    n, c, h, w = x.shape
    o = w2.shape[1] // (kh * kw)
    col = torch.mm(x.permute(0, 2, 3, 1).reshape(n * h * w, c), w2).view(n, h, w, kh, kw, o)
    y = x.new_zeros([n, (h - 1) * stride + kh, (w - 1) * stride + kw, o])
    for ky in range(kh):
        for kx in range(kw):
            rows, cols = slice(ky, ky + (h - 1) * stride + 1, stride), slice(kx, kx + (w - 1) * stride + 1, stride)
            y[:, rows, cols].add_(col[:, :, :, ky, kx])
    return y.permute(0, 3, 1, 2)


def _fir_after_upconv(y, f, up, kh, kw, padding, bias):
    """The filter step of conv2d_resample's upsampling path (pad by what the transposed conv left)."""
    fw = f.shape[-1]
    p0 = padding + (fw + up - 1) // 2 - (kw - 1)
    p1 = padding + (fw - up) // 2 - (kw - up)
    k = (f * (up * up)).flip([0, 1])
    if p0 == p1 and p0 >= 0:
        return _depthwise(y, k, padding=p0, bias=bias)
    return _depthwise(F.pad(y, [p0, p1, p0, p1]), k, bias=bias)


def upconv2d_gemm(x, w2, f, kh=3, kw=3, up=2, padding=1, bias=None):
    """upconv2d_transposed_weight with the transposed convolution done by conv_transpose2d_gemm (x must be
    channels-last; padding must not crop the transposed convolution's output, true for StyleGAN2's layers)."""
    fw = f.shape[-1]
    if min(padding + (fw + up - 1) // 2 - (kw - 1), padding + (fw - up) // 2 - (kw - up)) < 0:
        raise ValueError("upconv2d_gemm: padding crops the transposed convolution; use upconv2d_transposed_weight")
    return _fir_after_upconv(conv_transpose2d_gemm(x, w2, kh, kw, up), f, up, kh, kw, padding, bias)


def upconv2d_transposed_weight(x, wt, f, up=2, padding=1, bias=None):
    """conv2d_resample(x, w, f, up=up, padding=padding, flip_weight=False) for groups=1, with the weight
    already in conv_transpose layout (wt = w.transpose(0, 1), contiguous, so no copy per call) and an
    optional per-channel bias added by the filter convolution instead of a separate pass (inference path)."""
    _, _, kh, kw = wt.shape
    fw = f.shape[-1]
    p0 = padding + (fw + up - 1) // 2 - (kw - 1)
    p1 = padding + (fw - up) // 2 - (kw - up)
    pt = max(min(-p0, -p1), 0)  # crop inside the transposed convolution where the padding is negative
    y = F.conv_transpose2d(x, wt, stride=up, padding=pt)
    return _fir_after_upconv(y, f, up, kh, kw, padding + pt, bias)

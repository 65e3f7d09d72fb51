"""Inference path of the modulated convolution: same numbers as the reference path, less work.

Used by the synthesis layers whenever autograd does not record (see `needs_autograd`); the reference
path (`layers.modulated_conv2d` + `ops.bias_act`) stays the definition and is what the tests compare with.
What changes, and why it is the same function:

- the activation gain g > 0 is folded into the demodulation coefficients, bias and noise, since
  act(g * a) = g * act(a) for lrelu/relu/linear; scale + bias is one addcmul (or the conv's own bias);
- noise, activation and clamp run in place, in row bands small enough to stay in cache between the ops;
- a single image folds styles and demodulation into the weight (no passes over big activations);
- tensors that only depend on parameters (demodulation statistics, transposed or GEMM-layout weights,
  scaled bias and constant noise) are cached on the module, keyed on the parameters' identities, data
  pointers and version counters;
- on CPU, low-resolution transposed convolutions with many channels run as one GEMM plus col2im, and
  low-resolution 3x3 convolutions with many channels by Winograd's F(2x2, 3x3) (models.winograd).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import ops, winograd

# Choices measured in bench/generator.py (docs/performance.md).
GEMM_UPCONV_MIN_CHANNELS = 256  # transposed conv as one GEMM + col2im: wins with many channels and few pixels
GEMM_UPCONV_MAX_PIXELS = 2048  # (batch x input pixels); above, oneDNN's own transposed convolution wins
EPILOGUE_BAND_BYTES = 1 << 20  # run the in-place epilogue in row bands of about this size (L2-resident)


def needs_autograd(*tensors) -> bool:
    """Whether autograd records this computation (then in-place tricks are off limits)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def cached(module, name: str, tensors, fn):
    """fn(*tensors) cached on the module under `name`, valid while the same tensor objects (identity) hold the
    same data (pointer, version counter: every in-place update — optimizer step, load_state_dict, copy_ —
    bumps it; `.data =` and `.to()` move the pointer). The entry keeps the tensors themselves, so a replaced
    parameter cannot be freed and its address and id reused by a new tensor that would then match a stale
    entry. module=None computes without caching."""
    if module is None:
        with torch.no_grad():
            return fn(*tensors)
    tensors = tuple(tensors)
    key = tuple((t.data_ptr(), t._version, t.dtype, t.device, t.shape, t.stride()) for t in tensors)
    hit = module.__dict__.get(name)
    if hit is not None and hit[1] == key and all(a is b for a, b in zip(hit[0], tensors, strict=True)):
        return hit[2]
    with torch.no_grad():
        value = fn(*(t.detach() for t in tensors))
    module.__dict__[name] = (tensors, key, value)
    return value


def squared_weight_norms(module) -> torch.Tensor:
    """sum over the kernel of weight^2, [O, I]: the demodulation statistics (cached)."""
    return cached(module, "_wsq", (module.weight,), lambda w: w.square().sum(dim=[2, 3]))


def transposed_weight(module) -> torch.Tensor:
    """weight.transpose(0, 1) made contiguous, the layout conv_transpose2d wants (cached)."""
    return cached(module, "_wt", (module.weight,), _transposed)


def _transposed(w):
    return w.transpose(0, 1).contiguous()


def transposed_like(x, weight, cache=None):
    """weight.transpose(0, 1) in x's memory layout, cached on `cache`: one per layer, made straight in that layout
    (not an NCHW copy plus a conversion)."""
    if is_channels_last(x):
        return cached(cache, "_wt_cl", (weight,), _transposed_channels_last)
    return cached(cache, "_wt", (weight,), _transposed)


def _transposed_channels_last(w):
    return w.transpose(0, 1).contiguous(memory_format=torch.channels_last)


def is_channels_last(x) -> bool:
    """Dense in channels-last order and not also in NCHW order (a layout with one channel or one pixel is
    both)."""
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def weight_like(x, weight, cache=None, name="_w_cl"):
    """`weight` in x's memory layout. Given a channels-last input and an NCHW weight, the convolution first
    makes a channels-last copy of the weight, on every call: 2.4 ms for a 512 x 512 x 3 x 3 weight at 2
    threads, 3 % of a 256 px image at batch 1. The copy is cached instead (for shared weights)."""
    if not is_channels_last(x) or weight.is_contiguous(memory_format=torch.channels_last):
        return weight
    return cached(cache, name, (weight,), lambda w: w.contiguous(memory_format=torch.channels_last))


def _gemm_layout(w):
    return w.permute(1, 2, 3, 0).reshape(w.shape[1], -1).contiguous()


def activate_(x: torch.Tensor, act: str) -> torch.Tensor:
    """In-place activation without gain (the callers fold the positive gain into the preceding scale)."""
    if act == "lrelu":
        return F.leaky_relu_(x, ops.LRELU_ALPHA)
    if act == "relu":
        return F.relu_(x)
    if act != "linear":
        raise ValueError(f"unknown activation {act!r}; use linear, relu or lrelu")
    return x


def demodulation(styles, weight, gain, cache=None):
    """gain * rsqrt(sum_(i,k) (weight * style)^2 + 1e-8) per sample and output channel, [N, O], computed from
    the cached [I, O] weight statistics (scaled by 1/gain^2 so the gain comes out of the rsqrt)."""
    wsq, eps = cached(cache, f"_demod_{gain!r}", (weight,), lambda w: (
        w.square().sum(dim=[2, 3]).t().div(gain * gain), torch.full([1], 1e-8 / (gain * gain), dtype=w.dtype,
                                                                     device=w.device)))
    return torch.addmm(eps, styles.square(), wsq).rsqrt_()


def modulated_conv2d_inference(x, weight, styles, bias, noise=None, up=1, padding=0, resample_filter=None,
                               flip_weight=True, gain=1.0, act="lrelu", clamp=None, fold=None, cache=None):
    """modulated_conv2d(x, weight, styles, noise, up, padding, resample_filter, demodulate=True, flip_weight)
    followed by bias_act(bias, act, gain, clamp), on the inference path (see the module docstring).

    fold=True folds styles and demodulation into the weight of a single image; fold=False scales the
    activations around one convolution over the whole batch; None picks the cheaper. cache: the layer
    module, to reuse parameter-derived tensors between calls (optional)."""
    dcoefs = demodulation(styles, weight, gain, cache)
    bias = bias * gain
    noise = noise * gain if noise is not None else None
    return modconv_scaled(x, weight, styles, dcoefs, bias, noise, up, padding, resample_filter, flip_weight, act,
                          clamp, fold, cache)


def modconv_scaled(x, weight, styles, dcoefs, bias, noise, up, padding, f, flip_weight, act, clamp, fold, cache):
    """The convolution and epilogue, with dcoefs, bias and noise already multiplied by the gain."""
    n, in_channels, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    if fold is None:  # Winograd needs the shared weight (its transform is cached), so it runs unfolded
        fold = (n == 1 and out_channels * in_channels * kh * kw < (in_channels + out_channels * up * up) * h * w
                and not _winograd_applies(x, weight, up, padding, flip_weight))
    if fold and n == 1:
        # The folded weight is made in the layout the convolution wants (the input's memory format; for the
        # transposed convolution [I, O, kh, kw]) from a cached copy already in that layout, so both the
        # multiply and the convolution read memory in order: writing it from the NCHW weight instead gathers
        # with a stride of I * kh * kw (512 x 256 x 3 x 3 upsampling weight, 2 threads: 2.4 ms, 0.3 from the copy).
        if up == 1:
            base = weight_like(x, weight, cache)
            folded = base * (styles.reshape(1, -1, 1, 1) * dcoefs.reshape(-1, 1, 1, 1))  # [O, I, 1, 1] scale
            y = F.conv2d(x, folded if flip_weight else folded.flip([2, 3]), bias, padding=padding)
        else:
            scale = styles.reshape(-1, 1, 1, 1) * dcoefs.reshape(1, -1, 1, 1)  # [I, O, 1, 1]
            wt = transposed_like(x, weight, cache) * scale
            y = _upconv(x, wt, f, up, padding, flip_weight, bias)
    else:
        y = _unfused(x, weight, styles, up, padding, f, flip_weight, cache)
        y = torch.addcmul(bias.reshape(1, -1, 1, 1), y, dcoefs.reshape(n, -1, 1, 1), out=y)
    return _epilogue_(y, noise, act, clamp)


def _unfused(x, weight, styles, up, padding, f, flip_weight, cache):
    """Convolution of the style-scaled activations with the shared weight (whole batch at once)."""
    n, in_channels, h, w = x.shape
    if up == 1:
        xs = x * styles.reshape(n, -1, 1, 1)
        if _winograd_applies(xs, weight, up, padding, flip_weight):
            return winograd.conv3x3(xs, cached(cache, "_winograd", (weight,), winograd.transform_weight))
        return ops.conv2d_resample(xs, weight_like(xs, weight, cache), padding=padding, flip_weight=flip_weight)
    if (x.device.type == "cpu" and not flip_weight and in_channels >= GEMM_UPCONV_MIN_CHANNELS
            and n * h * w <= GEMM_UPCONV_MAX_PIXELS):
        # Scale and change layout in one pass: the GEMM reads the activations as [pixels, channels].
        xs = torch.mul(x, styles.reshape(n, -1, 1, 1), out=torch.empty(x.shape, dtype=x.dtype, device=x.device,
                                                                      memory_format=torch.channels_last))
        w2 = cached(cache, "_w2", (weight,), _gemm_layout)
        return ops.upconv2d_gemm(xs, w2, f, kh=weight.shape[2], kw=weight.shape[3], up=up, padding=padding)
    xs = x * styles.reshape(n, -1, 1, 1)
    return _upconv(xs, transposed_like(xs, weight, cache), f, up, padding, flip_weight, None)


def _winograd_applies(x, weight, up, padding, flip_weight) -> bool:
    return up == 1 and flip_weight and winograd.applies(x, weight, padding)


def _epilogue_(y, noise, act, clamp):
    """y += noise; activation; clamp — in place, in row bands that stay in cache between the ops."""
    rows = y.shape[2]
    band = max(1, EPILOGUE_BAND_BYTES // max(1, y[:, :, :1].numel() * y.element_size()))
    for r in range(0, rows, band):
        part = y[:, :, r:r + band] if band < rows else y
        if noise is not None:
            part.add_(noise[..., r:r + band, :] if band < rows else noise)
        activate_(part, act)
        if clamp is not None:
            part.clamp_(-clamp, clamp)
    return y


def _upconv(x, wt, f, up, padding, flip_weight, bias):
    if flip_weight:  # NVIDIA's layers always upsample with flip_weight=False; keep the general case exact
        wt = wt.flip([2, 3])
    return ops.upconv2d_transposed_weight(x, wt, f, up=up, padding=padding, bias=bias)


def torgb_inference(x, weight, styles, bias, clamp):
    """Modulated 1x1 convolution without demodulation (toRGB): per-sample weights, activations read once.

    A 1x1 kernel is a per-sample matrix product, done as one batched GEMM in whichever layout x is in (NCHW or
    channels-last): 5-35 % faster than a grouped convolution or a convolution per sample (bench at 1 thread,
    batch 8-16, 16-128 px), which matters because toRGB at full resolution is memory-bound."""
    n, c, h, w = x.shape
    if weight.shape[2:] == (1, 1) and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)):
        wm = weight[:, :, 0, 0].unsqueeze(0) * styles.reshape(n, 1, -1)  # [N, O, C]
        if x.is_contiguous():
            y = torch.baddbmm(bias.reshape(1, -1, 1), wm, x.reshape(n, c, h * w)).reshape(n, -1, h, w)
        else:  # channels-last memory is [N, H, W, C]: pixels x channels times channels x outputs
            pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
            y = torch.baddbmm(bias.reshape(1, 1, -1), pixels, wm.transpose(1, 2)).reshape(n, h, w, -1)
            y = y.permute(0, 3, 1, 2)
        return y.clamp_(-clamp, clamp) if clamp is not None else y
    wk = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]: tiny for toRGB
    if n == 1:
        y = F.conv2d(x, wk[0], bias)
    elif x.is_contiguous():
        y = F.conv2d(x.reshape(1, n * c, h, w), wk.reshape(-1, c, *wk.shape[3:]), bias.repeat(n), groups=n)
        y = y.reshape(n, -1, *y.shape[2:])
    else:
        y = torch.cat([F.conv2d(x[i:i + 1], wk[i], bias) for i in range(n)])
    return y.clamp_(-clamp, clamp) if clamp is not None else y

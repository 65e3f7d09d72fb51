"""A plain-numpy (float64) forward pass of NVIDIA's TensorFlow StyleGAN2 / StyleGAN2-ADA generator.

Written from the semantics of their TF code (training/networks.py of stylegan2-ada, networks_stylegan2.py of
stylegan2: G_main, G_mapping and G_synthesis with architecture='skip'; dnnlib/tflib/ops upfirdn_2d.py and
fused_bias_act.py), reading the variables as a TF pickle stores them: per network, names relative to it
(G: `dlatent_avg`; G_mapping: `Dense0/weight`, `LabelEmbed/bias`; G_synthesis: `4x4/Const/const`,
`8x8/Conv0_up/weight`, `8x8/ToRGB/mod_bias`, `noise0`, ...) in TF layouts (dense [in, out], conv HWIO).

It is the golden reference for the importer, so it shares nothing with latentstudio's model code and is literal
rather than fast: the transposed convolution is a scatter, the FIR filter a sum of shifted copies.
"""

from __future__ import annotations

import numpy as np

LRELU_ALPHA, LRELU_GAIN = 0.2, np.sqrt(2.0)  # fused_bias_act's 'lrelu' defaults


def bias_act(x, b, act="linear", clamp=None):
    """fused_bias_act: add the bias (over axis 1), activate, scale by the activation's gain, then clamp."""
    x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = np.where(x >= 0, x, x * LRELU_ALPHA) * LRELU_GAIN
    elif act != "linear":
        raise NotImplementedError(act)
    return x if clamp is None else np.clip(x, -clamp, clamp)


def runtime_weight(w, lrmul=1.0):
    """get_weight: the variable holds w / (lrmul * he_std); the graph multiplies it back by lrmul / sqrt(fan_in),
    fan_in being every dimension but the last ([in] for dense, [kh, kw, in] for conv)."""
    return w * (lrmul / np.sqrt(np.prod(w.shape[:-1])))


def dense(x, w, b, lrmul=1.0, act="linear"):
    """dense_layer + apply_bias_act (whose bias variable is scaled by the same lrmul)."""
    return bias_act(x @ runtime_weight(w, lrmul), b * lrmul, act)


def normalize_2nd_moment(x):
    return x / np.sqrt(np.mean(np.square(x), axis=1, keepdims=True) + 1e-8)


def fir_kernel(k, gain):
    """_FilterKernel / _setup_kernel: a 1-D kernel becomes its outer product, normalised to sum 1, times gain."""
    k = np.asarray(k, dtype=np.float64)
    k = np.outer(k, k) if k.ndim == 1 else k
    return k / k.sum() * gain


def upfirdn_2d(x, k, up=1, pad0=0, pad1=0):
    """_upfirdn_2d_ref on NCHW (down=1): insert up-1 zeros after each pixel, zero-pad, then a *true* convolution
    with k (TF flips the kernel before its cross-correlating conv2d), keeping only the 'valid' outputs."""
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * up, w * up))
    z[:, :, ::up, ::up] = x
    z = np.pad(z, ((0, 0), (0, 0), (pad0, pad1), (pad0, pad1)))
    kf = k[::-1, ::-1]
    kh, kw = k.shape
    oh, ow = z.shape[2] - kh + 1, z.shape[3] - kw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            out += kf[i, j] * z[:, :, i:i + oh, j:j + ow]
    return out


def conv2d_same(x, w):
    """tf.nn.conv2d, stride 1, padding 'SAME' (odd kernels): a cross-correlation with the HWIO kernel w."""
    kh, kw = w.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    h, wd = x.shape[2:]
    return sum(np.einsum("nchw,co->nohw", xp[:, :, i:i + h, j:j + wd], w[i, j])
               for i in range(kh) for j in range(kw))


def conv2d_transpose(x, f, stride):
    """tf.nn.conv2d_transpose, padding 'VALID', filter [kh, kw, out, in]: the gradient of conv2d, so each input
    pixel (i, j) adds f[a, b] @ x[i, j] to output pixel (stride * i + a, stride * j + b)."""
    n, _, h, w = x.shape
    kh, kw, oc, _ = f.shape
    out = np.zeros((n, oc, (h - 1) * stride + kh, (w - 1) * stride + kw))
    for a in range(kh):
        for b in range(kw):
            out[:, :, a:a + stride * h:stride, b:b + stride * w:stride] += np.einsum("nchw,oc->nohw", x, f[a, b])
    return out


def upsample_conv_2d(x, w, k):
    """upsample_conv_2d, factor 2, for a kxk (k > 1) HWIO kernel: TF flips the kernel spatially and swaps in/out
    for conv2d_transpose, then low-passes with the FIR filter (gain factor**2 = 4) padded by its formula."""
    cw = w.shape[1]
    kk = fir_kernel(k, gain=4)
    x = conv2d_transpose(x, w[::-1, ::-1].transpose(0, 1, 3, 2), stride=2)
    pad0, pad1 = (kk.shape[1] + 2 - cw) // 2, (kk.shape[1] - 2 - cw + 3) // 2
    return upfirdn_2d(x, kk, pad0=pad0, pad1=pad1)


def upsample_2d(x, k):
    """upsample_2d, factor 2: zero insertion + FIR filter with gain 4 (keeps a constant image constant)."""
    kk = fir_kernel(k, gain=4)
    return upfirdn_2d(x, kk, up=2, pad0=(kk.shape[1] + 1) // 2, pad1=(kk.shape[1] - 2) // 2)


def modulated_conv2d(x, dlatent, v, demodulate=True, up=False, k=None):
    """modulated_conv2d_layer (not fused: scale the input by the style, convolve with the shared kernel, scale
    the output by the demodulation coefficients of the per-sample kernel)."""
    w = runtime_weight(v["weight"])  # [kh, kw, I, O]
    s = dense(dlatent, v["mod_weight"], v["mod_bias"]) + 1  # [N, I]; the variable holds the bias minus its init 1
    if demodulate:
        ww = w[np.newaxis] * s[:, np.newaxis, np.newaxis, :, np.newaxis]  # [N, kh, kw, I, O]
        d = 1 / np.sqrt(np.sum(np.square(ww), axis=(1, 2, 3)) + 1e-8)  # [N, O]
    x = x * s[:, :, np.newaxis, np.newaxis]
    x = upsample_conv_2d(x, w, k) if up else conv2d_same(x, w)
    return x * d[:, :, np.newaxis, np.newaxis] if demodulate else x


def g_mapping(mvars, z, c, kwargs):
    """G_mapping: normalised z, [normalised label embedding], then Dense0..Dense{L-1} with lrmul."""
    x = normalize_2nd_moment(np.asarray(z, np.float64))
    if kwargs.get("label_size", 0) > 0:  # StyleGAN2-ADA's LabelEmbed (plain dense, lrmul 1)
        y = dense(np.asarray(c, np.float64), mvars["LabelEmbed/weight"], mvars["LabelEmbed/bias"])
        x = np.concatenate([x, normalize_2nd_moment(y)], axis=1)
    lrmul, act = kwargs.get("mapping_lrmul", 0.01), kwargs.get("mapping_nonlinearity", "lrelu")
    for i in range(kwargs.get("mapping_layers", 8)):
        x = dense(x, mvars[f"Dense{i}/weight"], mvars[f"Dense{i}/bias"], lrmul, act)
    return x


def num_layers(kwargs):
    return int(np.log2(kwargs.get("resolution", 1024))) * 2 - 2


def g_dlatents(gvars, z, c, truncation_psi, kwargs):
    """G_main up to synthesis: broadcast w to every layer, then lerp(dlatent_avg, w, psi) (psi=1: none)."""
    w = g_mapping(gvars["mapping"], z, c, kwargs)
    ws = np.repeat(w[:, np.newaxis], num_layers(kwargs), axis=1)
    if truncation_psi != 1:
        avg = np.asarray(gvars["dlatent_avg"], np.float64)
        ws = avg + (ws - avg) * truncation_psi
    return ws


def _scope(svars, name):
    prefix = name + "/"
    return {k[len(prefix):]: np.asarray(v, np.float64) for k, v in svars.items() if k.startswith(prefix)}


def g_synthesis(svars, ws, kwargs):
    """G_synthesis, architecture 'skip', noise read from the noise variables (randomize_noise=False)."""
    assert kwargs.get("architecture", "skip") == "skip", "the reference implements the skip generator only"
    k, clamp = kwargs.get("resample_kernel", [1, 3, 3, 1]), kwargs.get("conv_clamp")
    act = kwargs.get("nonlinearity", "lrelu")

    def layer(x, idx, scope, up=False):
        v = _scope(svars, scope)
        x = modulated_conv2d(x, ws[:, idx], v, up=up, k=k)
        if "noise_strength" in v:  # use_noise: the [1, 1, H, W] constant noise, broadcast over the batch
            x = x + np.asarray(svars[f"noise{idx}"], np.float64) * v["noise_strength"]
        return bias_act(x, v["bias"], act, clamp)

    def torgb(x, idx, scope):  # 1x1, not demodulated, linear
        v = _scope(svars, scope)
        return bias_act(modulated_conv2d(x, ws[:, idx], v, demodulate=False), v["bias"], clamp=clamp)

    x = np.tile(np.asarray(svars["4x4/Const/const"], np.float64), [ws.shape[0], 1, 1, 1])
    x = layer(x, 0, "4x4/Conv")
    y = torgb(x, 1, "4x4/ToRGB")
    for res in range(3, int(np.log2(kwargs.get("resolution", 1024))) + 1):
        r = f"{2 ** res}x{2 ** res}"
        x = layer(x, res * 2 - 5, f"{r}/Conv0_up", up=True)
        x = layer(x, res * 2 - 4, f"{r}/Conv1")
        y = upsample_2d(y, k) + torgb(x, res * 2 - 3, f"{r}/ToRGB")
    return y


def generate(gvars, kwargs, z, c=None, truncation_psi=1.0):
    """(ws, images) of Gs.run(z, c, truncation_psi=psi, randomize_noise=False) for the variables
    gvars = {'dlatent_avg': ..., 'mapping': {name: array}, 'synthesis': {name: array}} and G's static kwargs."""
    ws = g_dlatents(gvars, z, c, truncation_psi, kwargs)
    return ws, g_synthesis(gvars["synthesis"], ws, kwargs)

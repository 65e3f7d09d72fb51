"""The ADA augmentation pipeline (Karras et al. 2020, "Training GANs with limited data") in pure PyTorch.

Every image the discriminator sees — reals, fakes, and reals in the R1 pass — goes through `AugmentPipe`,
so D never sees an un-augmented distribution and G is not pushed to produce augmented-looking images.
Each op fires per image with probability p; below p ~ 0.8 the ops used here are "non-leaking" (the
augmented distribution still determines the clean one), which is why G's samples stay clean.

Geometric ops are composed into one 3x3 matrix per image (mapping output pixel positions to input
positions, origin at the image centre) and applied in a single resampling: reflect-pad, upsample 2x with a
Lanczos low-pass, bilinear sampling at 2x, low-pass downsample 2x, crop. Images whose matrix is a pure
flip / 90-degree rotation / integer shift are moved pixel by pixel instead (lossless), and images no op
touched are passed through untouched. Colour ops are composed into one 4x4 matrix on (r, g, b, 1).
Everything is differentiable (also twice, for R1 through the pipeline).
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
import torch
import torch.nn.functional as F

# Read-only views: these are shared by every pipeline, and a pipeline copies them before changing anything.
GEOMETRIC = MappingProxyType(dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1))
COLOR = MappingProxyType(dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1))
PIPES = MappingProxyType({"bg": GEOMETRIC, "bgc": MappingProxyType({**GEOMETRIC, **COLOR}), "c": COLOR})
# Spreads of the random parameters (the ADA paper's values).
SPREAD = MappingProxyType(dict(xint_max=0.125, scale_std=0.2, rotate_max=1.0, aniso_std=0.2, xfrac_std=0.125,
                               brightness_std=0.2, contrast_std=0.5, hue_max=1.0, saturation_std=1.0))


def lanczos_taps(a: int = 3) -> torch.Tensor:
    """Half-band Lanczos-a low-pass for 2x resampling: 4a taps at +-0.25, +-0.75, ... (in low-res pixels),
    normalised to unit sum. Applied separably along each axis."""
    t = (np.arange(4 * a) - (4 * a - 1) / 2) / 2
    f = np.sinc(t) * np.sinc(t / a)
    return torch.tensor(f / f.sum(), dtype=torch.float32)


def _axis_conv(x: torch.Tensor, taps: torch.Tensor, axis: int, stride: int = 1) -> torch.Tensor:
    """1-D correlation along axis 2 (rows) or 3 (columns), no padding, as a sum of shifted slices: several
    times faster on CPUs than a depthwise convolution with a 1 x k kernel."""
    n = x.shape[axis] - len(taps) + 1
    out = None
    for i, w in enumerate(taps.tolist()):
        index = [slice(None)] * 4
        index[axis] = slice(i, i + n, stride)
        part = x[tuple(index)]
        out = part * w if out is None else out.add(part, alpha=w)
    return out


def _pad_axis(x, before: int, after: int, axis: int):
    return F.pad(x, [0, 0, before, after] if axis == 2 else [before, after, 0, 0])


def upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling with the even-length filter f, per axis and polyphase (only the taps that meet input
    samples are computed). Output sample j sits at input position (j + 0.5) / 2, as in NVIDIA's upsample2d."""
    n = len(f)
    for axis in (2, 3):
        phases = []
        for ph in (0, 1):
            first = (n // 2 - ph) % 2  # taps t with j + t - n/2 even hit input samples
            offsets = [(ph + t - n // 2) // 2 for t in (first, n - 2 + first)]
            y = _axis_conv(_pad_axis(x, -offsets[0], offsets[1], axis), 2 * f[first::2], axis)
            phases.append(y)
        x = torch.stack(phases, dim=axis + 1).flatten(axis, axis + 1)
    return x


def downsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Low-pass with f and keep every second sample, per axis (NVIDIA's downsample2d alignment)."""
    n = len(f)
    for axis in (2, 3):
        x = _axis_conv(_pad_axis(x, (n - 1) // 2, (n - 2) // 2, axis), f, axis, stride=2)
    return x


# -- 3x3 (2D) and 4x4 (colour) matrices, batched ----------------------------------------------------------

def _eye(n, size, device):
    return torch.eye(size, device=device).unsqueeze(0).repeat(n, 1, 1)


def translate2d(tx, ty):
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx, sy):
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(cos, sin):
    m = _eye(cos.shape[0], 3, cos.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    return m


def translate3d(t):
    m = _eye(t.shape[0], 4, t.device)
    m[:, :3, 3] = t.unsqueeze(1)
    return m


def scale3d(s):
    m = _eye(s.shape[0], 4, s.device)
    m[:, [0, 1, 2], [0, 1, 2]] = s.unsqueeze(1)
    return m


def rotate3d(axis, theta):
    """Rotation by theta [N] about the unit vector axis [3] (Rodrigues' formula), as 4x4."""
    k = torch.zeros(3, 3, device=theta.device)
    k[0, 1], k[0, 2], k[1, 0], k[1, 2], k[2, 0], k[2, 1] = -axis[2], axis[1], axis[2], -axis[0], -axis[1], axis[0]
    s, c = theta.sin()[:, None, None], theta.cos()[:, None, None]
    r = torch.eye(3, device=theta.device) + s * k + (1 - c) * (k @ k)
    m = _eye(theta.shape[0], 4, theta.device)
    m[:, :3, :3] = r
    return m


def _gate(p: float, n: int, device, value, identity):
    """Per image: `value` with probability p, else `identity`."""
    return torch.where(torch.rand([n], device=device) < p, value, torch.full_like(value, identity))


class AugmentPipe(torch.nn.Module):
    """images [N, C, H, W] in about [-1, 1] -> augmented images; the probability `p` is a buffer (saved with
    the training state and steered by `ada.AdaController`)."""

    def __init__(self, pipe: str = "bgc", p: float = 0.0, **strengths):
        super().__init__()
        self.ops = {**PIPES[pipe], **{k: v for k, v in strengths.items() if k in GEOMETRIC or k in COLOR}}
        self.spread = {**SPREAD, **{k: v for k, v in strengths.items() if k in SPREAD}}
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("filter", lanczos_taps(3), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        p = float(self.p)
        if p <= 0:
            return images
        n, _, h, w = images.shape
        if any(self.ops.get(k, 0) for k in GEOMETRIC):
            images = self.apply_geometric(images, self.geometric_matrix(n, p, w, h, images.device))
        if any(self.ops.get(k, 0) for k in COLOR):
            images = apply_color(images, self.color_matrix(n, p, images.device))
        return images

    def geometric_matrix(self, n: int, p: float, w: int, h: int, device) -> torch.Tensor:
        """Inverse transform G_inv [N, 3, 3]: output pixel position -> input position (pixels, centred)."""
        o, s = self.ops, self.spread
        g = _eye(n, 3, device)
        zero = torch.zeros([n], device=device)
        if o.get("xflip"):
            i = torch.randint(2, [n], device=device).float()
            g = g @ scale2d(_gate(p * o["xflip"], n, device, 1 - 2 * i, 1), zero + 1)
        if o.get("rotate90"):
            k = _gate(p * o["rotate90"], n, device, torch.randint(4, [n], device=device), 0)
            cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=device)[k]  # exact, so the move stays lossless
            sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=device)[k]
            g = g @ rotate2d(cos, -sin)
        if o.get("xint"):
            t = (torch.rand([n, 2], device=device) * 2 - 1) * s["xint_max"]
            t = _gate(p * o["xint"], n, device, t.T, 0)
            g = g @ translate2d(-torch.round(t[0] * w), -torch.round(t[1] * h))
        if o.get("scale"):
            sc = _gate(p * o["scale"], n, device, torch.exp2(torch.randn([n], device=device) * s["scale_std"]), 1)
            g = g @ scale2d(1 / sc, 1 / sc)
        # Two rotations with probability 1 - sqrt(1 - p) each: some rotation happens with probability p.
        p_rot = 1 - math.sqrt(max(1 - p * o.get("rotate", 0), 0))
        if o.get("rotate"):
            g = g @ self._random_rotation(n, p_rot, device)
        if o.get("aniso"):
            a = _gate(p * o["aniso"], n, device, torch.exp2(torch.randn([n], device=device) * s["aniso_std"]), 1)
            g = g @ scale2d(1 / a, a)
        if o.get("rotate"):
            g = g @ self._random_rotation(n, p_rot, device)
        if o.get("xfrac"):
            t = _gate(p * o["xfrac"], n, device, (torch.randn([n, 2], device=device) * s["xfrac_std"]).T, 0)
            g = g @ translate2d(-t[0] * w, -t[1] * h)
        return g

    def _random_rotation(self, n, p_rot, device):
        theta = _gate(p_rot, n, device, (torch.rand([n], device=device) * 2 - 1) * math.pi * self.spread[
            "rotate_max"], 0)
        return rotate2d(torch.cos(-theta), torch.sin(-theta))

    def color_matrix(self, n: int, p: float, device) -> torch.Tensor:
        """C [N, 4, 4] acting on (r, g, b, 1)."""
        o, s = self.ops, self.spread
        c = _eye(n, 4, device)
        luma = torch.ones(3, device=device) / math.sqrt(3)  # the grey axis
        vv = torch.zeros(4, 4, device=device)
        vv[:3, :3] = torch.outer(luma, luma)
        if o.get("brightness"):
            b = _gate(p * o["brightness"], n, device, torch.randn([n], device=device) * s["brightness_std"], 0)
            c = translate3d(b) @ c
        if o.get("contrast"):
            k = _gate(p * o["contrast"], n, device, torch.exp2(torch.randn([n], device=device) * s["contrast_std"]), 1)
            c = scale3d(k) @ c
        if o.get("lumaflip"):
            i = _gate(p * o["lumaflip"], n, device, torch.randint(2, [n], device=device).float(), 0)
            c = (torch.eye(4, device=device) - 2 * vv * i[:, None, None]) @ c
        if o.get("hue"):
            theta = _gate(p * o["hue"], n, device, (torch.rand([n], device=device) * 2 - 1) * math.pi * s["hue_max"], 0)
            c = rotate3d(luma, theta) @ c
        if o.get("saturation"):
            sat = _gate(p * o["saturation"], n, device,
                        torch.exp2(torch.randn([n], device=device) * s["saturation_std"]), 1)
            eye = torch.eye(4, device=device)
            c = (vv + (eye - vv) * sat[:, None, None]) @ c
        return c

    def apply_geometric(self, images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        g_inv = g_inv.to(images.dtype)
        eye = torch.eye(3, device=g_inv.device, dtype=g_inv.dtype)
        moved = (g_inv - eye).abs().amax(dim=(1, 2)) > 0
        if not bool(moved.any()):
            return images
        lin = g_inv[:, :2, :2]
        integral = ((lin.abs() - 1).abs() * lin.abs()).amax(dim=(1, 2)) == 0  # entries in {-1, 0, 1}
        integral &= (g_inv[:, :2, 2] - torch.round(g_inv[:, :2, 2])).abs().amax(dim=1) == 0
        out = images
        for mask, fn in ((moved & integral, _move_pixels), (moved & ~integral, self._resample)):
            idx = mask.nonzero().flatten()
            if len(idx):
                out = out.index_copy(0, idx, fn(images.index_select(0, idx), g_inv.index_select(0, idx)))
        return out

    def _resample(self, images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
        return affine_resample(images, g_inv, self.filter.to(images.dtype))


def _pixel_grid(n: int, h: int, w: int, g_inv: torch.Tensor, step: float = 1.0, margin: float = 0.0):
    """Input positions [N, H', W', 2] (pixels, centred) for output samples spaced `step` apart over the image
    plus `margin` pixels on each side."""
    dev = g_inv.device
    xs = torch.arange(-margin + step / 2, w + margin, step, device=dev, dtype=g_inv.dtype) - w / 2
    ys = torch.arange(-margin + step / 2, h + margin, step, device=dev, dtype=g_inv.dtype) - h / 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1).reshape(-1, 3)
    src = torch.einsum("nij,pj->npi", g_inv, pts)[..., :2]
    return src.reshape(n, len(ys), len(xs), 2)


def _move_pixels(images: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """Flips, 90-degree rotations and integer shifts: every output pixel is an exact input pixel (mirrored at
    the borders). Nearest-neighbour sampling hits pixel centres exactly."""
    n, _, h, w = images.shape
    src = _pixel_grid(n, h, w, g_inv.to(images.dtype))
    grid = torch.stack([src[..., 0] / (w / 2), src[..., 1] / (h / 2)], dim=-1)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="reflection", align_corners=False)


def affine_resample(images: torch.Tensor, g_inv: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Resample images through G_inv without aliasing: upsample 2x (the borders reflect-padded so the filter
    sees image content), sample bilinearly at 2x with the image mirrored beyond its edges, low-pass and
    downsample 2x. Mirroring inside grid_sample instead of padding the whole reachable area keeps the work
    at 4x the image size whatever the transform."""
    n, _, h, w = images.shape
    g_inv = g_inv.to(images.dtype)
    margin = math.ceil(len(f) / 4)  # output-side support of the downsampling filter
    src = _pixel_grid(n, h, w, g_inv, step=0.5, margin=margin)  # centred input positions of 2x output samples
    pad = min(math.ceil(len(f) / 4) + 1, h - 1, w - 1)  # input-side support of the upsampling filter
    x = upsample2x(F.pad(images, [pad] * 4, mode="reflect"), f)
    x = x[:, :, 2 * pad:-2 * pad, 2 * pad:-2 * pad]  # exactly the image area, at 2x
    # Upsampled pixel j covers input positions [j / 2, (j + 1) / 2]: grid_sample's [-1, 1] spans the image.
    grid = torch.stack([src[..., 0] / (w / 2), src[..., 1] / (h / 2)], dim=-1)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = downsample2x(x, f)
    return x[:, :, margin:margin + h, margin:margin + w]


def apply_color(images: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Apply colour matrices C [N, 4, 4]; grey images use the matrix's effect on grey (r = g = b)."""
    eye = torch.eye(4, device=c.device)
    changed = (c - eye).abs().amax(dim=(1, 2)) > 0
    if not bool(changed.any()):
        return images
    n, ch, h, w = images.shape
    c = c.to(images.dtype)
    if ch == 3:
        out = torch.einsum("nij,njp->nip", c[:, :3, :3], images.reshape(n, 3, -1)) + c[:, :3, 3:]
    elif ch == 1:
        gain = c[:, :3, :3].sum(dim=2).mean(dim=1)
        out = images.reshape(n, 1, -1) * gain[:, None, None] + c[:, :3, 3].mean(dim=1)[:, None, None]
    else:
        raise ValueError(f"colour augmentation needs 1 or 3 channels, got {ch}")
    out = out.reshape(n, ch, h, w)
    return torch.where(changed[:, None, None, None], out, images)

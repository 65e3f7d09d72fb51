"""3x3 convolution (stride 1, padding 1) by Winograd's minimal filtering F(2x2, 3x3), in pure PyTorch.

Each 2x2 block of outputs comes from a 4x4 tile of the input: the tile and the kernel are transformed
(B^T d B, G g G^T), multiplied element-wise, summed over input channels and transformed back (A^T m A).
The channel sums are 16 matrix products [tiles, C] x [C, O], 2.25x fewer multiply-adds than the direct
convolution, and big well-shaped GEMMs. The transforms are additions over whole tensors, cheap next to the
GEMMs only while the channels are many and the pixels few: measured on the 2-core CPU (fp32, 512 channels),
1.3-1.7x faster than oneDNN's direct convolution from 8x8 to 32x32 at batch 1 and at 8 x 16x16 pixels, level
at 256 channels and 32x32, 3-6x slower at 128 channels and 128x128 (memory-bound transforms). Rounding: the
transforms only add and halve, so results match the direct convolution to ~3e-6 of the output's range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MIN_CHANNELS = 512  # input and output channels; below, the transforms cost what the GEMMs save
MAX_PIXELS = 2048  # batch x height x width; above, the transforms' memory traffic loses
# 256 channels pay off only in a middle band of pixels per batch (single layers, 2 threads: 5-25 % faster from
# 8 x 16x16 to 4 x 32x32 and at 1 x 64x64; whole networks slower when 8 x 4x4 and 8 x 8x8 layers take it too).
MID_CHANNELS = 256
MID_PIXELS = (1024, 4096)


def applies(x: torch.Tensor, weight: torch.Tensor, padding: int) -> bool:
    """Whether the Winograd path is the faster one for conv2d(x, weight, padding=padding) on this device."""
    n, c, h, w = x.shape
    if not (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and weight.shape[2:] == (3, 3)
            and padding == 1 and h % 2 == 0 and w % 2 == 0):
        return False
    channels, pixels = min(c, weight.shape[0]), n * h * w
    return ((channels >= MIN_CHANNELS and pixels <= MAX_PIXELS)
            or (channels >= MID_CHANNELS and MID_PIXELS[0] <= pixels <= MID_PIXELS[1]))


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """G g G^T of a conv weight [O, C, 3, 3] (correlation, as F.conv2d) -> [16, C, O] for the GEMMs."""
    g = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=weight.dtype,
                     device=weight.device)
    u = torch.einsum("ik,ockl,jl->ijco", g, weight, g)
    return u.reshape(16, weight.shape[1], weight.shape[0]).contiguous()


def _input_rows(d0, d1, d2, d3, out) -> None:
    """B^T along one axis of the tiles: (d0 - d2, d1 + d2, d2 - d1, d1 - d3)."""
    torch.sub(d0, d2, out=out[0])
    torch.add(d1, d2, out=out[1])
    torch.sub(d2, d1, out=out[2])
    torch.sub(d1, d3, out=out[3])


def _output_rows(m0, m1, m2, m3, out0, out1) -> None:
    """A^T along one axis: (m0 + m1 + m2, m1 - m2 - m3)."""
    torch.add(m0, m1, out=out0).add_(m2)
    torch.sub(m1, m2, out=out1).sub_(m3)


def conv3x3(x: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """F.conv2d(x, weight, padding=1) for wt = transform_weight(weight); x [N, C, H, W] with even H and W, in
    either memory layout. Returns [N, O, H, W] in channels-last memory."""
    n, c, h, w = x.shape
    o = wt.shape[2]
    th, tw = h // 2, w // 2
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))  # [N, H+2, W+2, C]; tile (t, s) starts at (2t, 2s)
    rows = xp.new_empty([4, n, th, w + 2, c])
    _input_rows(*(xp[:, i:i + h:2] for i in range(4)), rows)
    v = xp.new_empty([4, 4, n, th, tw, c])
    for r in range(4):
        _input_rows(*(rows[r][:, :, i:i + w:2] for i in range(4)), v[r])
    m = torch.bmm(v.view(16, n * th * tw, c), wt).view(4, 4, n, th, tw, o)
    z = m.new_empty([2, 4, n, th, tw, o])
    _output_rows(m[0], m[1], m[2], m[3], z[0], z[1])
    out = m.new_empty([n, h, w, o])
    blocks = out.view(n, th, 2, tw, 2, o)  # output pixel (2t + a, 2s + b) of tile (t, s)
    for a in range(2):
        _output_rows(z[a][0], z[a][1], z[a][2], z[a][3], blocks[:, :, a, :, 0], blocks[:, :, a, :, 1])
    return out.permute(0, 3, 1, 2)

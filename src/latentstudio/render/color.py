"""Generator output straight to the encoder's pixel format: planar YUV 4:2:0 (BT.601, limited range).

H.264 video is stored as yuv420p. Handing x264 RGB frames makes FFmpeg's swscale convert every frame on the
CPU, after the images were already converted once to interleaved uint8 RGB: at 128 px the two passes cost
about as much as x264 itself (0.13-0.18 + 0.16 ms a frame against ~0.07 for this one). Converting the
generator's planar float batch at once, with a 1x1 convolution per plane, skips both.

The maths is FFmpeg's default for untagged yuv420p (what players assume for it): BT.601 coefficients,
Y in 16..235 and chroma in 16..240 around 128, each chroma sample the mean of a 2x2 block of pixels. The
RGB levels are the ones `to_uint8` writes (x * 127.5 + 128, truncated: 127.5 + 127.5 x on average), so on
smooth pictures a frame matches swscale's conversion of the uint8 frame to within one level in Y and a few
in chroma where the picture clips (swscale filters chroma rather than averaging it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Rows Y, U, V over (R, G, B) levels 0..255, as FFmpeg's swscale uses them (BT.601, limited range, /256).
BT601 = ((66, 129, 25), (-38, -74, 112), (112, -94, -18))
OFFSETS = (16, 128, 128)


def _conv_coefficients() -> tuple[tuple, tuple]:
    """1x1 convolution weights (rows Y, U, V over R, G, B) and biases from x in [-1, 1]: level = 127.5 x +
    127.5. The +0.5 rounds when the result is truncated to uint8. Chroma rows are divided by 4: they apply
    to the sum of a 2x2 block of pixels (the bias, per pixel, is then counted 4 times). Plain numbers,
    worked out once."""
    rows = []
    for row, offset, share in zip(BT601, OFFSETS, (1, 4, 4), strict=True):
        k = [c / 256 * 127.5 for c in row]
        rows.append(([c / share for c in k], (offset + sum(k) + 0.5) / share))
    return tuple(w for w, _ in rows), tuple(b for _, b in rows)


CONV_WEIGHT, CONV_BIAS = _conv_coefficients()


def _weights(device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """CONV_WEIGHT as [3, 3, 1, 1] and CONV_BIAS as [3] on the images' device."""
    return (torch.tensor(CONV_WEIGHT, dtype=dtype, device=device).reshape(3, 3, 1, 1),
            torch.tensor(CONV_BIAS, dtype=dtype, device=device))


@torch.no_grad()
def yuv420(images: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] in [-1, 1] (C = 1 or 3, H and W even) -> uint8 [B, H * 3 // 2, W]: each frame's Y plane
    (H rows) followed by its U and V planes (H / 4 rows of W each), the layout FFmpeg's yuv420p frames
    have. Runs on the images' device; only the planes come back to the CPU."""
    b, c, h, w = images.shape
    if h % 2 or w % 2 or c not in (1, 3):
        raise ValueError(f"yuv420: needs 1 or 3 channels and an even height and width, got {list(images.shape)}")
    x = images.detach().float().clamp(-1, 1)
    if c == 1:
        x = x.expand(b, 3, h, w)
    weight, bias = _weights(x.device, x.dtype)
    y = F.conv2d(x, weight[:1], bias[:1]).reshape(b, -1)
    # Chroma is linear in RGB: sum each 2x2 block of RGB first (strided adds; avg_pool2d is ~20x slower on
    # 1-thread CPU batches), then convert a quarter of the pixels: 0.074-0.087 against 0.10 ms a 128 px frame
    # for converting every pixel and summing the chroma (1 thread, right after the generator, as in a walk).
    s = x[:, :, 0::2] + x[:, :, 1::2]
    s = s[..., 0::2] + s[..., 1::2]  # [B, 3, H / 2, W / 2]
    uv = F.conv2d(s, weight[1:], 4 * bias[1:]).reshape(b, -1)  # 4 pixels' bias
    planes = torch.cat([y, uv], 1).clamp_(0, 255)
    # float -> int16 -> uint8 is ~3x faster than float -> uint8 on the CPU (values are already in range)
    return planes.to(torch.int16).to(torch.uint8).reshape(b, h * 3 // 2, w).cpu().numpy()

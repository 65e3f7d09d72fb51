"""The FIR resampling ops against direct, loop-based definitions."""

import numpy as np
import torch

from latentstudio.models import ops


def naive_upfirdn(x, f, up, down, pad):
    """Zero-insert by `up`, pad (x0, x1, y0, y1), convolve with f (true convolution), keep every `down`."""
    n, c, h, w = x.shape
    up_x = np.zeros((n, c, h * up, w * up))
    up_x[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    padded = np.pad(up_x, ((0, 0), (0, 0), (py0, py1), (px0, px1)))
    fh, fw = f.shape
    oh, ow = padded.shape[2] - fh + 1, padded.shape[3] - fw + 1
    out = np.zeros((n, c, oh, ow))
    ff = f[::-1, ::-1]  # convolution = correlation with the flipped filter
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = (padded[:, :, i:i + fh, j:j + fw] * ff).sum(axis=(2, 3))
    return out[:, :, ::down, ::down]


def test_upfirdn2d_matches_definition():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    f = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0], [2.0, 1.0, 1.0]], dtype=torch.float64)
    for up, down, pad in [(1, 1, (1, 1, 1, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (2, 1, (0, 0, 0, 0))]:
        got = ops.upfirdn2d(x, f, up=up, down=down, padding=pad).numpy()
        want = naive_upfirdn(x.numpy(), f.numpy(), up, down, pad)
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_upsample_downsample_keep_dc_and_size():
    f = ops.setup_filter([1, 3, 3, 1])
    assert abs(float(f.sum()) - 1) < 1e-6
    x = torch.ones(1, 2, 8, 8)
    up = ops.upsample2d(x, f)
    assert up.shape == (1, 2, 16, 16)
    assert torch.allclose(up[:, :, 2:-2, 2:-2], torch.ones(1, 2, 12, 12), atol=1e-6)  # constant stays constant
    down = ops.downsample2d(x, f)
    assert down.shape == (1, 2, 4, 4)
    assert torch.allclose(down[:, :, 1:-1, 1:-1], torch.ones(1, 2, 2, 2), atol=1e-6)


def test_conv2d_resample_fast_paths_match_slow_composition():
    torch.manual_seed(1)
    f = ops.setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    conv = torch.nn.functional.conv2d
    # Upsampling fast path (transposed conv, then filter) == the generic definition: zero-insert, pad and
    # filter at the high resolution, then a plain convolution (true convolution: flip_weight=False).
    fast = ops.conv2d_resample(x, w, f=f, up=2, padding=1, flip_weight=False)
    slow = conv(ops.upfirdn2d(x, f, up=2, padding=(3, 2, 3, 2), gain=4), w.flip([2, 3]))
    assert fast.shape == (2, 5, 16, 16)
    torch.testing.assert_close(fast, slow, atol=1e-9, rtol=1e-9)
    # Downsampling fast path (filter, then strided conv) == pad, convolve, then filter and decimate.
    fast = ops.conv2d_resample(x, w, f=f, down=2, padding=1)
    slow = ops.upfirdn2d(conv(torch.nn.functional.pad(x, [2, 2, 2, 2]), w), f, down=2)
    assert fast.shape == (2, 5, 4, 4)
    torch.testing.assert_close(fast, slow, atol=1e-9, rtol=1e-9)


def test_bias_act_gain_and_clamp():
    x = torch.tensor([[-1.0, 2.0]])
    y = ops.bias_act(x, torch.tensor([0.0, 1.0]), act="lrelu", clamp=3.0)
    assert torch.allclose(y, torch.tensor([[-0.2 * 2**0.5, 3.0]]))

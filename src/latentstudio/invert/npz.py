"""Minimal reader/writer for NVIDIA's `projected_w.npz` layout (key `w`, [N, num_ws, w_dim] float32).

Stand-in until the walks area's `latentstudio.latent.io` lands on main; the names match it
(`save_latents`, `load_ws`) so switching is a one-line import change.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from ..io.model_dir import atomic_write_bytes


def save_latents(path: str | Path, ws) -> Path:
    """Write ws [N, num_ws, w_dim] (or [num_ws, w_dim]) as the array `w` of an .npz file, atomically."""
    w = np.asarray(ws.detach().cpu() if isinstance(ws, torch.Tensor) else ws, dtype=np.float32)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise ValueError(f"save_latents: ws must be [N, num_ws, w_dim], got shape {list(w.shape)}")
    buffer = io.BytesIO()
    np.savez(buffer, w=w)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def load_ws(path: str | Path, num_ws: int | None = None, w_dim: int | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] from an .npz with `w` (W-only [N, 1, w_dim] / [N, w_dim] is broadcast)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such latent file")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "w" not in data:
                raise UserError(f"{path}: no array named 'w' (found {list(data.keys())}); NVIDIA's projector "
                                "writes 'w'")
            w = np.asarray(data["w"], dtype=np.float32)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, AttributeError) as exc:
        raise UserError(f"{path}: not a readable .npz latent file ({exc})") from None
    if w.ndim == 2:
        w = w[:, None]
    if w.ndim != 3 or not np.all(np.isfinite(w)):
        raise UserError(f"{path}: expected finite latents [N, num_ws, w_dim], got shape {list(w.shape)}")
    if w_dim is not None and w.shape[2] != w_dim:
        raise UserError(f"{path}: latents have w_dim {w.shape[2]} but this model has {w_dim}; it was made for "
                        "another model")
    if num_ws is not None and w.shape[1] != num_ws:
        if w.shape[1] != 1:
            raise UserError(f"{path}: latents have {w.shape[1]} ws but this model needs {num_ws}")
        w = np.repeat(w, num_ws, axis=1)
    return torch.from_numpy(np.ascontiguousarray(w))

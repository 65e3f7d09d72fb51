"""Device selection shared by the library and the CLI (`--device auto|cpu|cuda[:N]`)."""

from __future__ import annotations

import os

import torch

from .errors import UserError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) picks CUDA when available, else CPU; asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: no CUDA GPU is visible to PyTorch; use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {device}: use auto, cpu, cuda or cuda:N")
    return dev


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, e.g. under taskset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

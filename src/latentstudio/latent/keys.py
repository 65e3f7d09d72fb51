"""Keys: the latents a walk passes through.

A key is written as text, the same on the command line and in timeline files:

- `7`               a seed (the same image as NVIDIA's generate.py `--seeds 7`); `3-6` is seeds 3, 4, 5, 6
- `path.npz`        a latent file (NVIDIA's `projected_w.npz`, a neighbour `037.npz`, `pick.npz`); a file
                    with N latents gives N keys
- `path.npz#2`      one latent (row 2, counting from 0) of a file with several

    keys = parse_keys("3,9,out/projected_w.npz")
    latents = resolve_keys(keys, G, LatentSpace("w"))     # [K, num_ws, w_dim]
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import torch

from ..errors import UserError
from .io import load_latents
from .seeds import parse_seeds, z_from_seed
from .space import LatentSpace


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """One key as written: a seed, or a latent file with an optional row."""

    seed: int | None = None
    path: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        if self.seed is not None:
            return str(self.seed)
        return self.path + (f"#{self.index}" if self.index is not None else "")


def parse_key(text, base_dir: str | Path | None = None) -> list[KeySpec]:
    """One key (or a seed range) -> KeySpecs. Relative paths are taken from `base_dir` when given."""
    if isinstance(text, bool):
        raise UserError(f"key {text!r}: use a seed number or a latent file path")
    if isinstance(text, int):
        return [KeySpec(seed=s) for s in parse_seeds(str(text))]
    text = str(text).strip()
    if not text:
        raise UserError("keys: empty key; use seeds (7), ranges (3-6) or latent files (path.npz)")
    if re.fullmatch(r"\d+(-\d+)?", text):
        return [KeySpec(seed=s) for s in parse_seeds(text)]
    index = None
    m = re.fullmatch(r"(.+)#(\d+)", text)
    if m:
        text, index = m.group(1), int(m.group(2))
    path = Path(text).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    if path.suffix.lower() not in (".npz", ".npy"):
        raise UserError(f"key {text!r}: not a seed and not a .npz/.npy latent file")
    return [KeySpec(path=str(path), index=index)]


def parse_keys(text: str, base_dir: str | Path | None = None) -> list[KeySpec]:
    """'3,9,path.npz' -> [KeySpec, ...]."""
    specs: list[KeySpec] = []
    for part in str(text).split(","):
        specs.extend(parse_key(part, base_dir))
    return specs


def _file_latents(spec: KeySpec, G, space: LatentSpace) -> torch.Tensor:
    data = load_latents(spec.path, num_ws=G.num_ws, w_dim=G.w_dim, z_dim=G.z_dim)
    if spec.index is not None and not 0 <= spec.index < len(data):
        raise UserError(f"key {spec}: {spec.path} holds {len(data)} latent(s); use #0..#{len(data) - 1}")
    rows = slice(spec.index, spec.index + 1) if spec.index is not None else slice(None)
    if space.is_z:
        if data.z is None:
            raise UserError(f"key {spec}: the file holds W latents, which have no Z; walk it with --space w or w+")
        return data.z[rows].clone()
    return data.w[rows].clone()


def resolve_key(spec: KeySpec, G, space: LatentSpace) -> torch.Tensor:
    """Latents [n, *space.shape(G)] on the CPU for one key (n = 1 unless a file holds several)."""
    if spec.seed is not None:
        z = torch.from_numpy(z_from_seed(spec.seed, G.z_dim)).float()
        return space.from_z(G, z)
    return _file_latents(spec, G, space)


def resolve_keys(specs, G, space: LatentSpace) -> torch.Tensor:
    """Latents [K, *shape] for a list of KeySpecs (files with several latents contribute each of them)."""
    if not specs:
        raise UserError("keys: give at least one key (a seed like 7 or a latent file like projected_w.npz)")
    return torch.cat([resolve_key(s, G, space) for s in specs])


def resolve_one(spec: KeySpec, G, space: LatentSpace) -> torch.Tensor:
    """Exactly one latent [*shape]; a file with several latents needs `#row`."""
    latents = resolve_key(spec, G, space)
    if latents.shape[0] != 1:
        raise UserError(f"key {spec}: the file holds {latents.shape[0]} latents; pick one with {spec}#0 .. "
                        f"#{latents.shape[0] - 1}")
    return latents[0]

"""Where the maths of a walk happens: Z, W or W+.

Every move produces latents in its space and `LatentSpace.to_ws` turns them into the generator's ws
[N, num_ws, w_dim]:

- `z`  latents are z vectors [z_dim]; they go through `G.mapping` (with truncation) frame by frame.
- `w`  latents are ws [num_ws, w_dim]; random offsets are one w_dim vector broadcast to every layer (the
       exhibition's "512-d Gaussian noise"), so a W latent (identical rows) stays a W latent.
- `w+` latents are ws [num_ws, w_dim]; random offsets are drawn independently for every layer.

Interpolation is the same in W and W+ (it is linear per row); the space decides the shape of the noise and
the origin (0 in Z, the tracked mean w_avg in W/W+) used by spherical interpolation and circles.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..errors import UserError
from .seeds import one_hot

SPACES = ("z", "w", "w+")


@dataclasses.dataclass(frozen=True)
class LatentSpace:
    """A latent space of one generator, plus the mapping settings used to reach ws from Z."""

    name: str = "w"
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    class_idx: int | None = None

    def __post_init__(self):
        if self.name not in SPACES:
            raise UserError(f"--space {self.name!r}: use z, w or w+")

    @property
    def is_z(self) -> bool:
        return self.name == "z"

    def shape(self, G) -> tuple[int, ...]:
        """Shape of one latent of this space."""
        return (G.z_dim,) if self.is_z else (G.num_ws, G.w_dim)

    def noise_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one random offset for latents of `shape`: one row broadcast over layers in W."""
        return (1, shape[-1]) if self.name == "w" else tuple(shape)

    def origin(self, G) -> torch.Tensor:
        """Centre of the space: 0 in Z, the mean w (w_avg) in W and W+."""
        if self.is_z:
            return torch.zeros(G.z_dim)
        w_avg = getattr(G.mapping, "w_avg", None)
        w = w_avg.detach().float().cpu() if w_avg is not None else torch.zeros(G.w_dim)
        return w.expand(G.num_ws, G.w_dim).clone()

    def noise(self, shape: tuple[int, ...], n: int, rng: np.random.RandomState) -> torch.Tensor:
        """n Gaussian offsets (unit σ) [n, *shape] for latents of `shape`, the same on every layer in W."""
        eps = torch.from_numpy(rng.standard_normal((n, *self.noise_shape(shape))).astype(np.float32))
        return eps.expand(n, *shape).clone()

    @torch.no_grad()
    def from_z(self, G, z: torch.Tensor) -> torch.Tensor:
        """Latents of this space for z [N, z_dim]: z itself in Z, mapped (with truncation) in W/W+."""
        z = z.float().cpu()
        return z if self.is_z else self.map(G, z).cpu()

    @torch.no_grad()
    def map(self, G, z: torch.Tensor) -> torch.Tensor:
        """G.mapping with this space's truncation and class, on G's device."""
        c = one_hot(self.class_idx, G.c_dim, z.shape[0], G.device)
        return G.mapping(z.to(G.device), c, truncation_psi=self.truncation_psi,
                         truncation_cutoff=self.truncation_cutoff)

    @torch.no_grad()
    def to_ws(self, G, latents: torch.Tensor) -> torch.Tensor:
        """ws [N, num_ws, w_dim] on G's device for latents [N, *shape] of this space."""
        if self.is_z:
            return self.map(G, latents)
        return latents.to(G.device, torch.float32)

    def check(self, G, latents: torch.Tensor, what: str) -> torch.Tensor:
        """Raise a UserError naming `what` when latents do not fit this space and model."""
        shape = self.shape(G)
        if tuple(latents.shape[1:]) != shape:
            raise UserError(f"{what}: latent shape {list(latents.shape[1:])} does not fit {self.name.upper()} "
                            f"of this model ({list(shape)})")
        return latents

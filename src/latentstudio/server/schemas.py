"""Request bodies of the JSON API (pydantic validates them; a bad body is a 422 naming the field)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_KEYS = 64
MAX_TRUNCATION = 2.0  # psi > 1 extrapolates away from the mean face; /info reports the same bound
MAX_NUM_WS = 64  # rows of a ws latent (a 1024 px StyleGAN2 has 18)
MAX_W_DIM = 4096  # values per row (StyleGAN2 uses 512, the built-in model 256)

WRow = Annotated[list[float], Field(max_length=MAX_W_DIM)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _finite(values):
    flat = values if not values or not isinstance(values[0], list) else [x for row in values for x in row]
    if not all(math.isfinite(x) for x in flat):
        raise ValueError("latent values must be finite numbers")
    return values


class Key(Strict):
    """One point of latent space: exactly one of `seed`, `drawing`, `w` or `of` (a neighbour of another key)."""

    seed: int | None = Field(None, ge=0, lt=2**32, description="NVIDIA seed semantics")
    truncation: float | None = Field(None, ge=0, le=MAX_TRUNCATION, description="for seeds (default: the server's)")
    drawing: str | None = Field(None, max_length=64, description="a projected drawing's id")
    # Rows and row length are bounded separately: a flat w of 512 floats is one row, not 512 rows.
    w: WRow | Annotated[list[WRow], Field(max_length=MAX_NUM_WS)] | None = Field(
        None, description="a W latent [w_dim] or ws [num_ws][w_dim]")
    of: Key | None = Field(None, description="neighbour of this key")
    index: int = Field(0, ge=0, lt=256, description="which neighbour (with `of`)")
    strength: float = Field(0.5, ge=0, le=10, description="noise std of neighbours (with `of`)")
    noise_seed: int = Field(0, ge=0, lt=2**32, description="noise seed of neighbours (with `of`)")

    @field_validator("w")
    @classmethod
    def _check_w(cls, v):
        return _finite(v) if v is not None else v

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [n for n in ("seed", "drawing", "w", "of") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"a key needs exactly one of seed, drawing, w or of; got {given or 'none'}")
        return self


class QueryBody(BaseModel):
    """RunwayML's StyleGAN input. Extra fields are ignored, as RunwayML did."""

    z: list[float] = Field(..., min_length=1, max_length=8192)
    truncation: float = Field(0.8, ge=0, le=MAX_TRUNCATION)

    @field_validator("z")
    @classmethod
    def _check_z(cls, v):
        return _finite(v)


class GenerateBody(Strict):
    seeds: list[int] | None = Field(None, max_length=MAX_KEYS)
    keys: list[Key] | None = Field(None, max_length=MAX_KEYS)
    truncation: float | None = Field(None, ge=0, le=MAX_TRUNCATION)
    format: Literal["jpeg", "png"] = "jpeg"

    @model_validator(mode="after")
    def _one_source(self):
        if (self.seeds is None) == (self.keys is None):
            raise ValueError("give either seeds or keys")
        if self.seeds is not None and any(not 0 <= s < 2**32 for s in self.seeds):
            raise ValueError("seeds must lie in 0 .. 2**32-1")
        return self


class NeighboursBody(Strict):
    key: Key
    count: int = Field(8, ge=1, le=64)
    strength: float = Field(0.5, ge=0, le=10)
    seed: int = Field(0, ge=0, lt=2**32)


class InterpolateBody(Strict):
    a: Key
    b: Key
    frames: int = Field(8, ge=2, le=64)


class WalkSpec(Strict):
    """A walk over keys: 'interpolate' morphs key to key, 'loop' circles each key with noise, 'ballad' does both."""

    keys: list[Key] = Field(..., min_length=1, max_length=MAX_KEYS)
    mode: Literal["interpolate", "loop", "ballad"] = "interpolate"
    frames: int = Field(48, ge=1, le=1000, description="interpolate: frames per morph; loop: frames per loop stop; "
                        "ballad: frames per morph and per whole loop (frames // stops per stop)")
    stops: int = Field(7, ge=2, le=32)
    strength: float = Field(0.6, ge=0, le=10)
    seed: int = Field(0, ge=0, lt=2**32)
    cyclic: bool = True
    fps: int = Field(24, ge=1, le=60)


class RenderBody(WalkSpec):
    cyclic: bool = False


class ModelSwitchBody(Strict):
    path: str = Field(..., min_length=1, max_length=1000)


class ProjectBody(Strict):
    drawing: str = Field(..., max_length=64)

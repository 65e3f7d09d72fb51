"""Simplex noise: continuous everywhere, σ ≈ 1, loops close, seeds reproduce."""

import numpy as np
import pytest

from latentstudio.latent.simplex import NoiseField, SimplexNoise


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_noise_is_continuous_across_cell_boundaries(dims):
    noise = SimplexNoise(dims, seed=3)
    rng = np.random.RandomState(dims)
    direction = rng.standard_normal(dims)
    direction /= np.linalg.norm(direction)
    h = 1e-4
    t = np.arange(0, 40, h)  # crosses hundreds of simplex boundaries
    values = noise(rng.uniform(0, 50, dims) + t[:, None] * direction)
    jumps = np.abs(np.diff(values))
    # A continuous noise with bounded slope changes by at most slope * h per step; a discontinuity (a kernel
    # radius larger than the simplex allows) would show jumps orders of magnitude larger.
    assert jumps.max() < 50 * h
    assert values.std() > 0.3


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_noise_has_unit_sigma_and_zero_mean(dims):
    for seed in (0, 7):
        values = SimplexNoise(dims, seed)(np.random.RandomState(seed + 1).uniform(0, 256, (40000, dims)))
        assert abs(values.std() - 1) < 0.1 and abs(values.mean()) < 0.05


def test_field_is_reproducible_independent_per_dimension_and_loops():
    field = NoiseField(64, speed=0.05, seed=4, loop_frames=90)
    a = field(np.arange(91))
    assert np.array_equal(a, NoiseField(64, speed=0.05, seed=4, loop_frames=90)(np.arange(91)))
    assert np.allclose(a[90], a[0])  # the frame after the last is the first
    assert not np.allclose(a, NoiseField(64, speed=0.05, seed=5, loop_frames=90)(np.arange(91)))
    corr = np.corrcoef(a.T)[np.triu_indices(64, 1)]
    assert np.abs(corr).mean() < 0.35  # dimensions move independently, not in lockstep
    batch = field(np.array([10, 11]))
    assert np.array_equal(batch, a[10:12])  # a batch gives the same values as the whole run


def test_open_field_speed_sets_the_pace():
    slow = NoiseField(256, speed=0.01, seed=0)(np.arange(200))
    fast = NoiseField(256, speed=0.04, seed=0)(np.arange(200))
    step = lambda v: np.abs(np.diff(v, axis=0)).mean()
    assert 2.5 < step(fast) / step(slow) < 5.5

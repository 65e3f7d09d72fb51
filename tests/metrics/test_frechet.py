"""Fréchet distance and KID: closed forms, reference implementations, unbiasedness."""

import numpy as np
import pytest

from latentstudio.metrics.frechet import feature_stats, frechet_distance, frechet_from_features, kid


def test_frechet_closed_form_for_diagonal_gaussians():
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expect = 5.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect, abs=1e-9)
    assert frechet_distance(mu1, np.diag(a), mu1, np.diag(a)) == pytest.approx(0, abs=1e-9)


def test_frechet_matches_scipy_sqrtm_for_general_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = m1 @ m1.T, m2 @ m2.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_distortion():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8))
    assert frechet_from_features(x, x) == pytest.approx(0, abs=1e-8)
    d = [frechet_from_features(x, x + rng.normal(scale=s, size=x.shape)) for s in (0.1, 0.5, 1.0)]
    assert d[0] < d[1] < d[2]
    mu, sigma = feature_stats(x)
    assert mu.shape == (8,) and sigma.shape == (8, 8)


def brute_force_mmd2(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3
    m = len(x)
    within = sum(k(x[i], x[j]) + k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    cross = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m ** 2
    return within - 2 * cross


def test_kid_is_the_unbiased_mmd_estimate():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 5)), rng.normal(loc=0.3, size=(12, 5))
    # One subset of all samples is a permutation of the full sets: the statistic does not depend on order.
    assert kid(x, y, num_subsets=1) == pytest.approx(brute_force_mmd2(y, x), rel=1e-9)
    # Unbiased: over independent pairs from one distribution the estimates average to ~0 (a biased
    # estimate that keeps the diagonal would be clearly positive).
    draws = [kid(rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), num_subsets=1) for _ in range(300)]
    mean, sem = np.mean(draws), np.std(draws) / np.sqrt(len(draws))
    assert abs(mean) < 3 * sem and min(draws) < 0
    shifted = [kid(rng.normal(size=(30, 4)), rng.normal(loc=1.0, size=(30, 4)), num_subsets=1) for _ in range(20)]
    assert np.mean(shifted) > 10 * abs(mean) + 10 * sem

"""Fréchet distance and kernel inception distance (KID) between two sets of feature vectors.

The maths is the same whatever network made the features; the metric's name says which network it was
(`fd_effnet_lite0` is not FID). Everything runs in float64 numpy; the matrix square root goes through
symmetric eigendecompositions, so no scipy is needed and the result is real by construction.
"""

from __future__ import annotations

import numpy as np


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features."""
    f = np.asarray(features, np.float64)
    if f.shape[0] < 2:
        raise ValueError("need at least 2 feature vectors for a covariance")
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    Tr((S1 S2)^(1/2)) equals the sum of square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), which is
    symmetric positive semi-definite, so it is computed without a general (complex) matrix square root."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)
    return max(value, 0.0)


def frechet_from_features(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, max_subset_size: int = 1000,
        seed: int = 0) -> float:
    """Unbiased estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3
    (Binkowski et al. 2018), averaged over random subsets of equal size m:
    1/(m(m-1)) sum_{i!=j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i,j} k(x_i, y_j). Can be slightly negative."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d = real.shape[1]
    m = min(real.shape[0], fake.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 generated samples")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = fake[rng.choice(fake.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += within - 2 * kxy.sum() / (m * m)
    return float(total / num_subsets)

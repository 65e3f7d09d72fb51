"""Image-set metrics with no download: SWD, Fréchet distance and KID in EfficientNet-Lite0 feature space, and
real Inception FID/KID from a weight file the user gives. See docs/metrics.md."""

from .compute import ALL_METRICS, DEFAULT_METRICS, compute_metrics

__all__ = ["ALL_METRICS", "DEFAULT_METRICS", "compute_metrics"]

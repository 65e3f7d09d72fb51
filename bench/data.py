"""Benchmark of the data side: drawing the demo set, preparing a folder, reading a dataset, and the metric
feature extractors. Prints one table; every ratio is measured in the same run (the machine may be shared).

    .venv/bin/python bench/data.py                 # quick: ~1-2 minutes on 2 CPU cores
    .venv/bin/python bench/data.py --images 288    # more images per measurement
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_demo(n: int, rows: list) -> None:
    from latentstudio.data.demo import demo_images

    for size in (128, 256):
        seconds = timed(lambda size=size: demo_images("smiles", n, size, seed=0))
        rows.append((f"draw smiles {size}px", n / seconds, "img/s"))


def bench_prepare_and_read(n: int, tmp: Path, rows: list) -> None:
    from PIL import Image

    from latentstudio.data.dataset import ImageDataset
    from latentstudio.data.prepare import PrepareConfig, prepare_folder

    src = tmp / "photos"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):  # JPEG "photos" of 1200x900, the typical phone-photo-of-a-drawing input
        low = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
        low.resize((1200, 900), Image.BICUBIC).save(src / f"p{i:04d}.jpg", quality=90)
    for workers in (1, 2):
        seconds = timed(lambda w=workers: prepare_folder(src, tmp / f"ds{w}", PrepareConfig(size=128, workers=w),
                                                        overwrite=True, contact_sheet=False))
        rows.append((f"prepare 1200x900 jpg -> 128, {workers} thread(s)", n / seconds, "img/s"))
    ds_cached = ImageDataset(tmp / "ds1")
    ds_lazy = ImageDataset(tmp / "ds1", cache_mb=0)
    open_s = timed(lambda: ImageDataset(tmp / "ds1"))
    rows.append((f"open dataset ({n} images, decode into cache)", n / open_s, "img/s"))
    for name, ds in (("cached", ds_cached), ("uncached", ds_lazy)):
        seconds = timed(lambda ds=ds: [ds[i] for i in range(len(ds))], repeat=3)
        rows.append((f"dataset[i] {name}", len(ds) / seconds, "img/s"))


def bench_features(rows: list) -> None:
    from latentstudio.metrics.effnet import load_effnet_lite0
    from latentstudio.metrics.swd import swd

    x = torch.randint(0, 256, (16, 3, 128, 128), dtype=torch.uint8)
    net = load_effnet_lite0("cpu")
    with torch.no_grad():
        net(x[:2])
        cl = timed(lambda: net(x), repeat=2)
        net.to(memory_format=torch.contiguous_format)
        plain = timed(lambda: _forward_contiguous(net, x), repeat=2)
    rows.append(("EfficientNet-Lite0 features (channels_last)", len(x) / cl, "img/s"))
    rows.append(("EfficientNet-Lite0 features (contiguous)", len(x) / plain, "img/s"))
    rows.append(("  channels_last speed-up", plain / cl, "x"))
    reals = torch.randint(0, 256, (64, 3, 128, 128), dtype=torch.uint8)
    seconds = timed(lambda: swd(reals, reals.flip(-1)))
    rows.append(("SWD, 64 vs 64 images at 128px", 128 / seconds, "img/s"))


def _forward_contiguous(net, images):
    import torch.nn.functional as F

    x = F.relu6(net._bn0(net._conv_stem(net.preprocess(images))))
    for block in net._blocks:
        x = block(x)
    return F.relu6(net._bn1(net._conv_head(x))).mean(dim=(2, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=144)
    args = parser.parse_args()
    os.environ.setdefault("LATENTSTUDIO_PROGRESS", "0")
    rows: list = []
    bench_demo(args.images, rows)
    with tempfile.TemporaryDirectory() as tmp:
        bench_prepare_and_read(args.images, Path(tmp), rows)
    bench_features(rows)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    width = max(len(r[0]) for r in rows)
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:10.1f} {unit}")


if __name__ == "__main__":
    main()

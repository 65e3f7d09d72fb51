"""`ImageDataset`: the training/metrics view of a prepared dataset (a folder or an NVIDIA-layout zip).

Items are `(uint8 tensor [C, H, W], float32 label tensor [label_dim])`, like NVIDIA's dataset class (theirs
returns numpy). With `mirror=True` the dataset is twice as long and index `i + N` is image `i` flipped left to
right (NVIDIA's --mirror); `mirror=None` follows the `mirror` that `prepare --mirror` recorded in dataset.json.
Everything is checked when the dataset is opened (square, power of two, one size, one channel count, labels for
every image) so a bad set fails before training starts, with the fix.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from ..utils.progress import track
from .images import IMAGE_SUFFIXES
from .layout import META_FILE

PREPARE_HINT = "make a training set with `latentstudio prepare SRC --out DATASET --size 128`"
DEFAULT_CACHE_MB = 1024


class _Source:
    """File access to a folder or a zip. The zip handle is opened lazily and never pickled, so the dataset
    can go to DataLoader worker processes."""

    def __init__(self, path: Path):
        self.path = path
        self.is_zip = path.is_file()
        self._zip = None
        if self.is_zip:
            try:
                names = self._zipfile().namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise UserError(f"{path}: not a readable zip ({exc}); {PREPARE_HINT}") from None
            self.names = sorted(n for n in names if not n.endswith("/"))
        elif path.is_dir():
            self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        else:
            raise UserError(f"{path}: no such dataset (a folder or .zip); {PREPARE_HINT}")

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        return self._zip

    def open(self, name: str):
        """A binary file object (headers can be read without reading the whole file)."""
        if self.is_zip:
            return self._zipfile().open(name)
        return open(self.path / name, "rb")

    def read(self, name: str) -> bytes:
        if self.is_zip:
            return self._zipfile().read(name)
        return (self.path / name).read_bytes()

    def fingerprint(self) -> str:
        """A content hash of the images and dataset.json. For zips it uses the CRC-32 and size of every
        member from the zip directory (instant); for folders it hashes the file bytes."""
        h = hashlib.sha256()
        if self.is_zip:
            for info in sorted(self._zipfile().infolist(), key=lambda i: i.filename):
                h.update(f"{info.filename}\0{info.CRC:08x}\0{info.file_size}\n".encode())
        else:
            for name in self.names:
                h.update(name.encode() + b"\0")
                h.update(hashlib.sha256(self.read(name)).digest())
        return h.hexdigest()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_zip"] = None
        return state


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def _decode(source: _Source, name: str) -> np.ndarray:
    """File -> [C, H, W] uint8."""
    try:
        with Image.open(io.BytesIO(source.read(name))) as img:
            arr = np.asarray(img.convert("L") if img.mode in ("1", "L") else img.convert("RGB"))
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UserError(f"{source.path}/{name}: cannot decode image ({exc}); delete it or re-run prepare") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class ImageDataset(torch.utils.data.Dataset):
    """A prepared dataset. `resolution` (optional) must match the images; `max_size` keeps a fixed random
    subset (seed 0, like NVIDIA); decoded images are cached in memory when they fit in `cache_mb`."""

    def __init__(self, path, resolution: int | None = None, mirror: bool | None = False, use_labels: bool = False,
                 max_size: int | None = None, cache_mb: float = DEFAULT_CACHE_MB, random_seed: int = 0):
        self.path = Path(path).expanduser()
        self.name = self.path.stem
        self._source = _Source(self.path)
        self.meta = self._read_meta()
        self.mirror = bool(self.meta.get("mirror") is True) if mirror is None else bool(mirror)
        names = [n for n in self._source.names if _is_image(n)]
        if not names:
            raise UserError(f"{self.path}: contains no images; {PREPARE_HINT}")
        self._all_names = names
        self._idx = np.arange(len(names))
        if max_size is not None and max_size < len(names):
            rng = np.random.RandomState(random_seed % (1 << 31))
            self._idx = np.sort(rng.permutation(len(names))[:max_size])
        self.image_names = [names[i] for i in self._idx]
        self.num_channels, self.resolution = self._check_shapes()
        if resolution is not None and resolution != self.resolution:
            raise UserError(f"{self.path}: images are {self.resolution}x{self.resolution}, not {resolution}x"
                            f"{resolution}; re-run prepare with --size {resolution} or use --resolution "
                            f"{self.resolution}")
        self.class_names: list[str] | None = None
        self._labels = self._load_labels() if use_labels else np.zeros([len(self.image_names), 0], np.float32)
        self.label_dim = self._labels.shape[1]
        self._cache = None
        if self.raw_bytes() <= cache_mb * 2**20:
            names = track(self.image_names, desc=f"reading {self.name}", unit="img") \
                if self.num_images > 2000 else self.image_names
            self._cache = np.stack([_decode(self._source, n) for n in names])
            self._check_decoded(self._cache[0].shape)

    # -- opening -------------------------------------------------------------------------------------------

    def _read_meta(self) -> dict:
        if META_FILE not in self._source.names:
            return {}
        try:
            meta = json.loads(self._source.read(META_FILE))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{self.path}/{META_FILE}: not valid JSON ({exc}); fix or delete it") from None
        if not isinstance(meta, dict):
            raise UserError(f"{self.path}/{META_FILE}: expected an object with a 'labels' key; fix or delete it")
        return meta

    def _check_shapes(self) -> tuple[int, int]:
        """Read every image header (cheap: no pixel decoding) and check one square power-of-two size."""
        first = None
        for name in self.image_names:
            try:
                with self._source.open(name) as f, Image.open(f) as img:
                    size, mode = img.size, img.mode
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise UserError(f"{self.path}/{name}: unreadable image ({exc}); delete it or re-run prepare") \
                    from None
            channels = 1 if mode in ("1", "L") else 3 if mode in ("RGB", "P") else 0
            where = f"{self.path}/{name}"
            if channels == 0:
                raise UserError(f"{where}: image mode {mode} (alpha or high bit depth); {PREPARE_HINT} "
                                "(it flattens alpha onto a background)")
            if size[0] != size[1]:
                raise UserError(f"{where}: {size[0]}x{size[1]} is not square; {PREPARE_HINT} (--crop center|pad)")
            if size[0] < 4 or size[0] & (size[0] - 1):
                raise UserError(f"{where}: {size[0]}x{size[0]} is not a power of two (e.g. 64, 128, 256, 1024); "
                                f"{PREPARE_HINT}")
            if first is None:
                first = (channels, size[0], name)
            elif (channels, size[0]) != first[:2]:
                raise UserError(f"{where}: {size[0]}x{size[0]} with {channels} channel(s), but {first[2]} is "
                                f"{first[1]}x{first[1]} with {first[0]}; all images must match; {PREPARE_HINT}")
        return first[0], first[1]

    def _check_decoded(self, shape) -> None:
        if tuple(shape) != (self.num_channels, self.resolution, self.resolution):
            raise UserError(f"{self.path}: decoded images have shape {tuple(shape)}; {PREPARE_HINT}")

    def _load_labels(self) -> np.ndarray:
        raw = self.meta.get("labels")
        names = self.meta.get("class_names")
        if isinstance(names, dict):
            self.class_names = [names[k] for k in sorted(names, key=int)]
        elif isinstance(names, list):
            self.class_names = [str(n) for n in names]
        if raw is None:
            return np.zeros([len(self.image_names), 0], np.float32)
        try:
            table = {str(k).replace("\\", "/"): v for k, v in raw}
        except (TypeError, ValueError):
            raise UserError(f"{self.path}/{META_FILE}: 'labels' must be a list of [file, label] pairs") from None
        missing = [n for n in self.image_names if n not in table]
        if missing:
            raise UserError(f"{self.path}/{META_FILE}: no label for {missing[0]} ({len(missing)} image(s) without "
                            "one); re-run prepare --labels subfolders, or train without labels")
        values = [table[n] for n in self.image_names]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            dim = max(max(values) + 1, len(self.class_names or ()))
            if min(values) < 0:
                raise UserError(f"{self.path}/{META_FILE}: negative class index; class labels start at 0")
            onehot = np.zeros([len(values), dim], np.float32)
            onehot[np.arange(len(values)), values] = 1
            return onehot
        try:
            arr = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            raise UserError(f"{self.path}/{META_FILE}: labels must be class indices or equal-length number lists") \
                from None
        if arr.ndim != 2:
            raise UserError(f"{self.path}/{META_FILE}: labels must be class indices or equal-length number lists")
        return arr

    # -- access -------------------------------------------------------------------------------------------

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.num_channels, self.resolution, self.resolution)

    @property
    def has_labels(self) -> bool:
        return self.label_dim > 0

    @property
    def num_images(self) -> int:
        """Distinct images (without the mirrored copies)."""
        return len(self.image_names)

    def raw_bytes(self) -> int:
        return self.num_images * int(np.prod(self.image_shape))

    def fingerprint(self) -> str:
        """Content hash of the dataset files plus the subset taken, for caching features of real images."""
        h = hashlib.sha256(self._source.fingerprint().encode())
        h.update(np.asarray(self._idx, np.int64).tobytes())
        return h.hexdigest()

    def __len__(self) -> int:
        return self.num_images * (2 if self.mirror else 1)

    def get_image(self, index: int) -> np.ndarray:
        """[C, H, W] uint8 numpy array for a (possibly mirrored) index."""
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        raw = index % self.num_images
        arr = self._cache[raw] if self._cache is not None else _decode(self._source, self.image_names[raw])
        if self._cache is None:
            self._check_decoded(arr.shape)
        if index >= self.num_images:
            return arr[:, :, ::-1].copy()
        return arr.copy()

    def get_label(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self._labels[index % self.num_images].copy())

    def __getitem__(self, index: int):
        return torch.from_numpy(self.get_image(int(index))), self.get_label(int(index))

    def __repr__(self) -> str:
        return (f"ImageDataset({str(self.path)!r}: {self.num_images} images, {self.num_channels}x{self.resolution}"
                f"x{self.resolution}, label_dim={self.label_dim}, mirror={self.mirror})")

"""ImageDataset over folders and NVIDIA-layout zips: items, labels, mirroring, subsets, validation."""

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.data.dataset import ImageDataset
from latentstudio.data.layout import DatasetWriter, build_meta, image_name
from latentstudio.errors import UserError


def random_images(n, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (size, size, channels) if channels == 3 else (size, size)
    return [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(n)]


def write_set(tmp_path, images, labels=None, class_names=None, name="ds", fmt="folder"):
    folder = tmp_path / name if fmt in ("folder", "both") else None
    zpath = tmp_path / f"{name}.zip" if fmt in ("zip", "both") else None
    with DatasetWriter(folder, zpath) as w:
        for img in images:
            w.add(img)
        w.close(build_meta(w.names, labels, class_names, False, images[0].size[0], 3, None))
    return folder, zpath


@pytest.mark.parametrize("channels", [3, 1])
def test_folder_and_zip_give_identical_items(tmp_path, channels):
    images = random_images(5, channels=channels)
    folder, zpath = write_set(tmp_path, images, fmt="both")
    for path in (folder, zpath):
        ds = ImageDataset(path)
        assert len(ds) == 5 and ds.resolution == 16 and ds.num_channels == channels and ds.label_dim == 0
        assert ds.name == "ds"
        for i, img in enumerate(images):
            x, c = ds[i]
            assert x.dtype == torch.uint8 and x.shape == (channels, 16, 16)
            want = np.asarray(img).reshape(16, 16, channels).transpose(2, 0, 1)
            assert np.array_equal(x.numpy(), want)
            assert c.dtype == torch.float32 and c.shape == (0,)


def test_cached_and_uncached_agree_and_pickle(tmp_path):
    _, zpath = write_set(tmp_path, random_images(4), fmt="zip")
    cached, lazy = ImageDataset(zpath), ImageDataset(zpath, cache_mb=0)
    assert cached._cache is not None and lazy._cache is None
    lazy[0]  # opens the zip handle, which must not travel in the pickle
    clone = pickle.loads(pickle.dumps(lazy))
    for i in range(4):
        assert torch.equal(cached[i][0], lazy[i][0]) and torch.equal(cached[i][0], clone[i][0])


def test_mirror_doubles_with_flips(tmp_path):
    folder, _ = write_set(tmp_path, random_images(3))
    ds = ImageDataset(folder, mirror=True)
    assert len(ds) == 6 and ds.num_images == 3
    for i in range(3):
        assert torch.equal(ds[i + 3][0], ds[i][0].flip(-1))
    assert not torch.equal(ds[3][0], ds[0][0])
    with pytest.raises(IndexError):
        ds[6]


def test_labels_one_hot_with_class_names(tmp_path):
    folder, _ = write_set(tmp_path, random_images(4), labels=[0, 2, 1, 2], class_names=["cats", "dogs", "owls"])
    ds = ImageDataset(folder, use_labels=True)
    assert ds.label_dim == 3 and ds.class_names == ["cats", "dogs", "owls"]
    assert torch.equal(ds[1][1], torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(torch.stack([ds[i][1] for i in range(4)]).sum(0), torch.tensor([1.0, 1.0, 2.0]))
    assert ImageDataset(folder).label_dim == 0  # labels only when asked for


def test_reads_a_zip_written_like_nvidia_dataset_tool(tmp_path):
    images = random_images(3, size=8)
    path = tmp_path / "nv.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i, img in enumerate(images):
            import io
            buf = io.BytesIO()
            img.save(buf, format="png")
            z.writestr(image_name(i), buf.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": [[image_name(i), i % 2] for i in range(3)]}))
    ds = ImageDataset(path, use_labels=True, resolution=8)
    assert image_name(1) == "00000/img00000001.png"
    assert ds.label_dim == 2 and torch.equal(ds[2][1], torch.tensor([1.0, 0.0]))
    assert np.array_equal(ds[1][0].numpy().transpose(1, 2, 0), np.asarray(images[1]))


def test_max_size_is_a_fixed_subset(tmp_path):
    folder, _ = write_set(tmp_path, random_images(10))
    a, b = ImageDataset(folder, max_size=4), ImageDataset(folder, max_size=4)
    assert len(a) == 4 and a.image_names == b.image_names and a.image_names == sorted(a.image_names)
    assert a.fingerprint() != ImageDataset(folder).fingerprint()


def test_fingerprint_follows_content(tmp_path):
    folder, zpath = write_set(tmp_path, random_images(3), fmt="both")
    f1, z1 = ImageDataset(folder).fingerprint(), ImageDataset(zpath).fingerprint()
    assert f1 == ImageDataset(folder).fingerprint()
    random_images(1, seed=5)[0].save(folder / image_name(1))
    assert ImageDataset(folder).fingerprint() != f1
    _, zpath2 = write_set(tmp_path, random_images(3, seed=7), name="other", fmt="zip")
    assert ImageDataset(zpath2).fingerprint() != z1


@pytest.mark.parametrize("case,needle", [
    ("nonsquare", "not square"),
    ("npot", "not a power of two"),
    ("mixed", "all images must match"),
    ("corrupt", "unreadable image"),
    ("rgba", "alpha"),
    ("empty", "contains no images"),
    ("resolution", "re-run prepare with --size 32"),
    ("missing", "no such dataset"),
    ("badjson", "not valid JSON"),
])
def test_validation_names_file_and_fix(tmp_path, case, needle):
    root = tmp_path / "bad"
    (root / "00000").mkdir(parents=True)
    good = random_images(2)
    for i, img in enumerate(good):
        img.save(root / image_name(i))
    kwargs = {}
    if case == "nonsquare":
        Image.new("RGB", (16, 8)).save(root / image_name(1))
    elif case == "npot":
        for i in range(2):
            Image.new("RGB", (12, 12)).save(root / image_name(i))
    elif case == "mixed":
        Image.new("RGB", (32, 32)).save(root / image_name(1))
    elif case == "corrupt":
        (root / image_name(1)).write_bytes(b"\x89PNG not really")
    elif case == "rgba":
        Image.new("RGBA", (16, 16)).save(root / image_name(1))
    elif case == "empty":
        for i in range(2):
            (root / image_name(i)).unlink()
    elif case == "resolution":
        kwargs = {"resolution": 32}
    elif case == "missing":
        root = tmp_path / "nope"
    elif case == "badjson":
        (root / "dataset.json").write_text("{labels: ")
    with pytest.raises(UserError) as exc:
        ImageDataset(root, **kwargs)
    msg = str(exc.value)
    assert needle in msg and "\n" not in msg
    if case in ("nonsquare", "mixed", "corrupt", "rgba"):
        assert "img00000001.png" in msg


def test_missing_label_is_an_error(tmp_path):
    folder, _ = write_set(tmp_path, random_images(2), labels=[0, 1])
    meta = json.loads((folder / "dataset.json").read_text())
    meta["labels"] = meta["labels"][:1]
    (folder / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="no label for 00000/img00000001.png"):
        ImageDataset(folder, use_labels=True)
    assert ImageDataset(folder).label_dim == 0


def test_writer_is_atomic(tmp_path):
    folder = tmp_path / "ds"
    with pytest.raises(RuntimeError):
        with DatasetWriter(folder, tmp_path / "ds.zip") as w:
            w.add(random_images(1)[0])
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []

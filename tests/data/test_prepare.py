"""prepare: from a messy folder tree to a dataset, with every file accounted for."""

import json

import numpy as np
import pytest
from PIL import Image

from latentstudio.cli import main
from latentstudio.data.dataset import ImageDataset
from latentstudio.data.images import flatten, load_square, open_image
from latentstudio.data.prepare import PrepareConfig, prepare_folder
from latentstudio.errors import UserError


def noise(w, h, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w, channels) if channels > 1 else (h, w)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


@pytest.fixture()
def messy(tmp_path):
    src = tmp_path / "src"
    (src / "cats").mkdir(parents=True)
    (src / "dogs" / "deep").mkdir(parents=True)
    noise(120, 80, seed=1).save(src / "cats" / "wide.jpg")
    noise(80, 120, seed=2).save(src / "cats" / "tall.png")
    Image.open(src / "cats" / "tall.png").save(src / "cats" / "tall_copy.webp", lossless=True)  # same pixels
    noise(20, 20, seed=3).save(src / "cats" / "tiny.png")
    (src / "cats" / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a jpeg")
    (src / "cats" / ".DS_Store").write_bytes(b"junk")
    noise(70, 70, channels=4, seed=4).save(src / "dogs" / "alpha.png")
    noise(64, 64, channels=1, seed=5).save(src / "dogs" / "deep" / "gray.tif")
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(src / "dogs" / "anim.gif", save_all=True, append_images=frames[1:])
    (src / "readme.txt").write_text("not an image")
    noise(64, 64, seed=6).save(src / "loose.bmp")
    return src


def test_messy_folder_every_file_accounted_for(messy, tmp_path):
    cfg = PrepareConfig(size=32, min_size=50, labels="subfolders", mirror=True, format="both")
    report = prepare_folder(messy, tmp_path / "out", cfg)
    kept = {k["source"] for k in report["kept"]}
    dropped = {d["source"]: d["reason"] for d in report["dropped"]}
    assert kept == {"cats/tall.png", "cats/wide.jpg", "dogs/alpha.png", "dogs/anim.gif", "dogs/deep/gray.tif"}
    assert dropped == {"cats/tall_copy.webp": "exact duplicate", "cats/tiny.png": "smaller than --min-size 50",
                       "cats/broken.jpg": "unreadable (corrupt, truncated or unsupported)",
                       "readme.txt": "not an image file type",
                       "loose.bmp": "not in a class subfolder (--labels subfolders)"}
    dup = next(d for d in report["dropped"] if d["reason"] == "exact duplicate")
    assert dup["duplicate_of"] == "cats/tall.png"
    assert "dropped 1: exact duplicate" in report["summary"] and report["summary"][0] == "kept 5 image(s)"
    saved = json.loads((tmp_path / "out.report.json").read_text())
    assert saved["settings"]["min_size"] == 50 and "decoded pixels" in saved["settings"]["duplicates_by"]
    assert (tmp_path / "out.contact.png").is_file()
    folder = ImageDataset(tmp_path / "out", use_labels=True)
    zipped = ImageDataset(tmp_path / "out.zip", use_labels=True)
    assert folder.class_names == ["cats", "dogs"] and folder.label_dim == 2 and folder.meta["mirror"] is True
    assert len(folder) == 5 and folder.resolution == 32
    labels = {k["source"]: k["label"] for k in report["kept"]}
    for i, entry in enumerate(report["kept"]):
        assert torch_equal(folder[i][0], zipped[i][0])
        assert folder[i][1].argmax().item() == labels[entry["source"]] == (entry["source"].startswith("dogs"))
    gif = report["kept"].index(next(k for k in report["kept"] if k["source"] == "dogs/anim.gif"))
    assert folder[gif][0][:, 16, 16].tolist() == [255, 0, 0]  # first frame


def torch_equal(a, b):
    return bool((a == b).all())


def test_exif_orientation_alpha_and_pad(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    arr = np.full((100, 200, 3), 255, np.uint8)
    arr[:, :100] = 0  # left half black as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": stored left becomes the top
    Image.fromarray(arr).save(src / "rotated.jpg", exif=exif, quality=95)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 16:48] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(src / "sticker.png")
    report = prepare_folder(src, tmp_path / "out", PrepareConfig(size=32, min_size=0, crop="pad",
                                                                 background="#00ff00"))
    ds = ImageDataset(tmp_path / "out")
    by_src = {k["source"]: i for i, k in enumerate(report["kept"])}
    img = ds[by_src["rotated.jpg"]][0].float()
    assert img[:, 4, 16].mean() < 40 and img[:, 28, 16].mean() > 215  # black top, white bottom
    assert img[1, 16, 1] > 200 and img[0, 16, 1] < 40  # green padding left and right of the tall image
    sticker = ds[by_src["sticker.png"]][0]
    assert sticker[:, 2, 2].tolist() == [0, 255, 0] and sticker[:, 16, 16].tolist() == [0, 0, 255]


def test_no_silent_upscaling_and_min_size_zero(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    noise(40, 40).save(src / "small.png")
    noise(80, 64).save(src / "big.png")
    r = prepare_folder(src, tmp_path / "a", PrepareConfig(size=64))
    assert [k["source"] for k in r["kept"]] == ["big.png"] and r["dropped"][0]["reason"] == "smaller than --min-size 64"
    r = prepare_folder(src, tmp_path / "b", PrepareConfig(size=64, min_size=0))
    assert len(r["kept"]) == 2


def test_grayscale_output(messy, tmp_path):
    prepare_folder(messy, tmp_path / "g", PrepareConfig(size=16, min_size=0, channels=1))
    ds = ImageDataset(tmp_path / "g")
    assert ds.num_channels == 1 and ds[0][0].shape == (1, 16, 16)


def test_resize_is_antialiased_and_jpeg_draft_matches_full_decode(tmp_path):
    checker = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)
    small = np.asarray(load_square_img(Image.fromarray(checker), 64), np.float32)
    assert abs(small.mean() - 127.5) < 3 and small.std() < 8  # nearest-neighbour would give pure 0/255
    rng = np.random.default_rng(0)
    smooth = np.asarray(Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).resize((1600, 1200),
                                                                                                   Image.BICUBIC))
    Image.fromarray(smooth).save(tmp_path / "photo.jpg", quality=92)
    fast = np.asarray(load_square(tmp_path / "photo.jpg", 64), np.float32)
    from latentstudio.data.images import resize, square
    full = np.asarray(resize(square(open_image(tmp_path / "photo.jpg")), 64), np.float32)
    drafted = np.asarray(resize(square(open_image(tmp_path / "photo.jpg", draft_size=128)), 64), np.float32)
    assert np.abs(drafted - full).mean() < 2.0 and np.array_equal(fast, full)


def load_square_img(img, size):
    from latentstudio.data.images import resize, square
    return resize(square(img), size)


def test_sixteen_bit_images_are_scaled_not_clipped():
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    img = flatten(Image.fromarray(arr), channels=1)
    assert Image.fromarray(arr).mode.startswith("I")
    assert np.asarray(img).tolist() == [[0, 128, 255]]


@pytest.mark.parametrize("setup,kwargs,needle", [
    ("empty", {}, "no images found"),
    ("inside", {}, "is inside SRC"),
    ("missing", {}, "no such folder"),
    ("allbad", {}, "no image was kept"),
    ("ok", {"size": 48}, "power of two"),
    ("ok", {"background": "plaid"}, "--background"),
])
def test_prepare_errors(tmp_path, setup, kwargs, needle):
    src = tmp_path / "src"
    src.mkdir()
    out = tmp_path / "out"
    if setup == "inside":
        noise(64, 64).save(src / "a.png")
        out = src / "out"
    elif setup == "missing":
        src = tmp_path / "nothing"
    elif setup == "allbad":
        (src / "a.png").write_bytes(b"nope")
    elif setup == "ok":
        noise(64, 64).save(src / "a.png")
    with pytest.raises(UserError, match=needle):
        prepare_folder(src, out, PrepareConfig(**kwargs))
    assert not out.exists()
    if setup == "allbad":
        assert json.loads((tmp_path / "out.report.json").read_text())["dropped"][0]["source"] == "a.png"


def test_prepare_command(messy, tmp_path, capsys):
    assert main(["prepare", str(messy), "--out", str(tmp_path / "ds.zip"), "--size", "16", "--min-size", "0",
                 "--format", "zip"]) == 0
    out = capsys.readouterr().out
    assert "kept 7 image(s)" in out and "dropped 1: exact duplicate" in out
    assert len(ImageDataset(tmp_path / "ds.zip")) == 7
    assert main(["prepare", str(messy), "--demo", "smiles", "--out", str(tmp_path / "x")]) == 2


def test_crop_none_stretches_and_black_background(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    wide = np.full((100, 200, 3), 255, np.uint8)
    wide[:, :50] = (255, 0, 0)  # left quarter red: centre-cropping would cut it away, stretching keeps it
    Image.fromarray(wide).save(src / "wide.png")
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 16:48] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(src / "sticker.png")
    report = prepare_folder(src, tmp_path / "out", PrepareConfig(size=32, min_size=0, crop="none",
                                                                 background="black"))
    ds = ImageDataset(tmp_path / "out")
    by_src = {k["source"]: i for i, k in enumerate(report["kept"])}
    img = ds[by_src["wide.png"]][0]
    assert img.shape == (3, 32, 32)
    assert img[:, 16, 2].tolist() == [255, 0, 0] and img[:, 16, 28].tolist() == [255, 255, 255]
    assert img[:, 1, 2].tolist() == [255, 0, 0]  # every row: stretched, not padded
    sticker = ds[by_src["sticker.png"]][0]
    assert sticker[:, 2, 2].tolist() == [0, 0, 0] and sticker[:, 16, 16].tolist() == [0, 0, 255]
    centre = prepare_folder(src, tmp_path / "c", PrepareConfig(size=32, min_size=0))
    cropped = ImageDataset(tmp_path / "c")[[k["source"] for k in centre["kept"]].index("wide.png")][0]
    assert cropped[0].min() == 255 and cropped[1].min() > 200  # the red quarter was cut away
    pad = prepare_folder(src, tmp_path / "p", PrepareConfig(size=32, min_size=0, crop="pad", background="black"))
    padded = ImageDataset(tmp_path / "p")[[k["source"] for k in pad["kept"]].index("wide.png")][0]
    assert padded[:, 2, 16].tolist() == [0, 0, 0]  # black bars above and below


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels (no pixel data): what a decompression bomb shows."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("workers", [1, 3])
def test_corrupt_files_never_stop_the_run(tmp_path, workers):
    src = tmp_path / "src"
    src.mkdir()
    noise(64, 64, seed=1).save(src / "a_good.png")
    noise(300, 200, seed=2).save(src / "full.jpg", quality=90)
    data = (src / "full.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(data[: len(data) // 2])  # header intact, scan data cut off
    (src / "bomb.png").write_bytes(png_header_only(30000, 30000))  # 900 M pixels claimed
    (src / "empty.png").write_bytes(b"")
    noise(64, 64, seed=3).save(src / "z_good.webp", lossless=True)
    report = prepare_folder(src, tmp_path / "out", PrepareConfig(size=32, workers=workers))
    assert [k["source"] for k in report["kept"]] == ["a_good.png", "full.jpg", "z_good.webp"]
    dropped = {d["source"]: d for d in report["dropped"]}
    assert set(dropped) == {"truncated.jpg", "bomb.png", "empty.png"}
    truncated = dropped["truncated.jpg"]
    assert truncated["reason"].startswith("unreadable") and "truncated" in truncated["error"]
    assert "decompression-bomb" in dropped["bomb.png"]["reason"]
    assert dropped["bomb.png"]["error"].startswith("DecompressionBombError")
    assert dropped["empty.png"]["reason"].startswith("unreadable")
    assert len(ImageDataset(tmp_path / "out")) == 3


def test_a_failure_after_decoding_drops_only_that_file(tmp_path, monkeypatch):
    """Hashing, squaring and resizing are inside the per-file guard: e.g. running out of memory on one huge
    scan drops that scan with a reason."""
    import latentstudio.data.prepare as prep

    src = tmp_path / "src"
    src.mkdir()
    noise(64, 64, seed=1).save(src / "a.png")
    noise(96, 64, seed=2).save(src / "huge.png")
    real = prep.square

    def square(img, mode, background):
        if img.size == (96, 64):
            raise MemoryError("cannot allocate")
        return real(img, mode, background)

    monkeypatch.setattr(prep, "square", square)
    report = prepare_folder(src, tmp_path / "out", PrepareConfig(size=32, workers=1))
    assert [k["source"] for k in report["kept"]] == ["a.png"]
    assert report["dropped"] == [{"source": "huge.png", "reason": prep.UNREADABLE, "source_size": [96, 64],
                                  "error": "MemoryError: cannot allocate"}]


def test_class_names_come_from_kept_images_only(tmp_path):
    src = tmp_path / "src"
    for cls in ("ants", "bees", "cats"):
        (src / cls).mkdir(parents=True)
    noise(64, 64, seed=1).save(src / "ants" / "a.png")
    noise(16, 16, seed=2).save(src / "bees" / "small.png")  # below --min-size: bees ends up empty
    noise(64, 64, seed=3).save(src / "cats" / "c.png")
    report = prepare_folder(src, tmp_path / "out", PrepareConfig(size=32, labels="subfolders"))
    assert report["class_names"] == ["ants", "cats"]
    assert [k["label"] for k in report["kept"]] == [0, 1]
    ds = ImageDataset(tmp_path / "out", use_labels=True)
    assert ds.class_names == ["ants", "cats"] and ds.label_dim == 2
    assert ds[1][1].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("extra,needle", [
    (["--labels", "subfolders"], "--labels only apply to a folder"),
    (["--crop", "pad", "--background", "black"], "--crop, --background only apply"),
    (["--min-size", "0"], "--min-size only apply"),
])
def test_demo_rejects_folder_options(tmp_path, capsys, extra, needle):
    assert main(["prepare", "--demo", "smiles", "--out", str(tmp_path / "d"), "--count", "2", "--size", "16",
                 *extra]) == 2
    assert needle in capsys.readouterr().err and not (tmp_path / "d").exists()


def test_folder_rejects_demo_options_and_demo_records_mirror(messy, tmp_path, capsys):
    assert main(["prepare", str(messy), "--out", str(tmp_path / "f"), "--count", "5"]) == 2
    assert "--count: only apply with --demo" in capsys.readouterr().err and not (tmp_path / "f").exists()
    assert main(["prepare", "--demo", "smiles", "--out", str(tmp_path / "d"), "--count", "2", "--size", "16",
                 "--mirror"]) == 0
    ds = ImageDataset(tmp_path / "d", mirror=None)
    assert ds.meta["mirror"] is True and len(ds) == 4

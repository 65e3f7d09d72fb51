"""Importing NVIDIA pickles: same images as the source network, nothing in the pickle executed."""

import os
import pickle

import pytest
import torch

from latentstudio.errors import UnsafePickleError
from latentstudio.io.model_dir import load_model
from latentstudio.io.nvidia import import_nvidia_pickle, load_nvidia_pickle
from latentstudio.io.registry import open_model

from ..helpers import make_tiny
from .nvidia_fixtures import write_pytorch_pickle, write_tf_pickle


def assert_same_images(G_src, G_new, n=4):
    z = torch.randn(n, G_src.z_dim)
    for psi in (1.0, 0.6):
        a = G_src(z, truncation_psi=psi, noise_mode="const")
        b = G_new(z, truncation_psi=psi, noise_mode="const")
        assert (a - b).abs().max().item() < 1e-4


@pytest.mark.parametrize("writer", [write_pytorch_pickle, write_tf_pickle])
def test_import_round_trip_same_images(tmp_path, writer):
    G, D = make_tiny(seed=3)
    marker = tmp_path / "executed.txt"
    pkl = writer(tmp_path / "network.pkl", G, D, marker=str(marker))
    out = import_nvidia_pickle(pkl, tmp_path / "model")
    model = load_model(out, device="cpu", with_discriminator=True)
    assert_same_images(G, model.G)
    img = torch.randn(2, 3, 32, 32)
    assert (D(img) - model.D(img)).abs().max() < 1e-4
    assert not marker.exists(), "source code stored in the pickle was executed"
    assert model.provenance["source"] == "nvidia-pickle"


def test_pytorch_pickle_keeps_raw_generator_and_dataset(tmp_path):
    G, D = make_tiny(seed=4)
    G_raw, _ = make_tiny(seed=5)
    pkl = write_pytorch_pickle(tmp_path / "snap.pkl", G, D, G_raw=G_raw)
    nets = load_nvidia_pickle(pkl)
    assert nets["format"] == "pytorch"
    assert_same_images(G_raw, nets["G"])
    assert nets["training_set_kwargs"]["path"] == "paintings.zip"
    out = import_nvidia_pickle(pkl, tmp_path / "model")
    assert (out / "generator_train.safetensors").is_file()


def test_open_model_reads_pkl_directly(tmp_path):
    G, D = make_tiny(seed=6)
    pkl = write_tf_pickle(tmp_path / "tf.pkl", G, D)
    model = open_model(pkl, device="cpu")
    assert_same_images(G, model.G)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/latentstudio-pwned",))


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    target = "/tmp/latentstudio-pwned"
    if os.path.exists(target):
        os.remove(target)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(UnsafePickleError, match="refused to load.*system"):
        load_nvidia_pickle(path)
    assert not os.path.exists(target)


@pytest.mark.parametrize("payload", [
    b"cbuiltins\neval\n(S'1+1'\ntR.",
    b"csubprocess\nPopen\n(S'ls'\ntR.",
])
def test_other_dangerous_globals_refused(tmp_path, payload):
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match="refused"):
        load_nvidia_pickle(path)


def test_garbage_and_wrong_content(tmp_path):
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(UnsafePickleError, match="not a readable network pickle"):
        load_nvidia_pickle(junk)
    other = tmp_path / "list.pkl"
    other.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(Exception, match="not a StyleGAN2 network pickle"):
        load_nvidia_pickle(other)


@pytest.mark.parametrize("name,kimg", [("network-snapshot-001100.pkl", 1100), ("network-snapshot-000000.pkl", 0),
                                       ("stylegan2-ffhq-config-f.pkl", None)])
def test_provenance_reads_kimg_from_nvidia_snapshot_names(tmp_path, name, kimg):
    G, D = make_tiny(seed=8)
    pkl = write_pytorch_pickle(tmp_path / name, G, D)
    model = load_model(import_nvidia_pickle(pkl, tmp_path / "model"), device="cpu")
    assert model.provenance.get("kimg") == kimg and model.provenance["pickle"] == name
    assert model.provenance["dataset"]["path"] == "paintings.zip"
    assert open_model(pkl, device="cpu").provenance.get("kimg") == kimg  # .pkl opened directly: same facts

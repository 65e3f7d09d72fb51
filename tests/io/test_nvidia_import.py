"""Importing NVIDIA pickles: same images as the source network, nothing in the pickle executed."""

import os
import pickle

import pytest
import torch

from latentstudio.errors import ModelFormatError, UnsafePickleError
from latentstudio.io.model_dir import load_model
from latentstudio.io.nvidia import import_nvidia_pickle, load_nvidia_pickle
from latentstudio.io.registry import open_model
from latentstudio.models import Discriminator
from latentstudio.models.config import DMappingConfig

from ..helpers import make_tiny
from .nvidia_fixtures import write_pytorch_pickle, write_tf_pickle


def one_hot(n, c_dim):
    return torch.nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None


def assert_same_images(G_src, G_new, n=4):
    z = torch.randn(n, G_src.z_dim)
    c = one_hot(n, G_src.c_dim)
    for psi in (1.0, 0.6):
        a = G_src(z, c, truncation_psi=psi, noise_mode="const")
        b = G_new(z, c, truncation_psi=psi, noise_mode="const")
        assert a.shape == b.shape == (n, G_src.img_channels, G_src.img_resolution, G_src.img_resolution)
        assert (a - b).abs().max().item() <= 1e-4


def assert_same_logits(D_src, D_new, n=8):
    # 8 images: more than the TF default minibatch-stddev group (4), so the group size matters.
    img = torch.randn(n, D_src.img_channels, D_src.img_resolution, D_src.img_resolution)
    c = one_hot(n, D_src.c_dim)
    assert (D_src(img, c) - D_new(img, c)).abs().max().item() <= 1e-4


def make_nets(seed, c_dim=0, img_channels=3, g_arch="skip", d_arch="resnet", d_mapping=None, mbstd=None):
    """A tiny G (make_tiny) and a D of the given architecture, both with non-trivial biases."""
    G, D = make_tiny(seed=seed, c_dim=c_dim, img_channels=img_channels, architecture=g_arch)
    cfg = D.config.replace(architecture=d_arch, mapping=d_mapping or D.config.mapping)
    if mbstd is not None:
        cfg = cfg.replace(epilogue=cfg.epilogue.replace(mbstd_group_size=mbstd))
    torch.manual_seed(seed + 1000)
    D = Discriminator(cfg)
    with torch.no_grad():
        for name, p in D.named_parameters():
            if name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return G, D.eval()


VARIANTS = {
    "conditional": dict(c_dim=3),  # D's class mapping as stylegan2-ada-pytorch builds it (8 layers, lr 0.01)
    # TF's D_main defaults (class mapping of 0 layers, lr 0.1, mbstd group 4), which TF pickles do not store.
    "conditional-tf-defaults": dict(c_dim=3, d_mapping=DMappingConfig(num_layers=0, lr_multiplier=0.1), mbstd=4),
    "grayscale": dict(img_channels=1, d_arch="skip"),
    "resnet": dict(g_arch="resnet", d_arch="resnet"),
    "orig": dict(g_arch="orig", d_arch="orig"),
}
WRITERS = {
    "pytorch": write_pytorch_pickle,
    "pytorch-train.py": lambda path, G, D, **kw: write_pytorch_pickle(path, G, D, train_py_kwargs=True, nhwc=True,
                                                                      **kw),
    "tensorflow": write_tf_pickle,
    "tensorflow-lod": lambda path, G, D, **kw: write_tf_pickle(path, G, D, lod=True, **kw),
}
CASES = [(w, v) for w in WRITERS for v in VARIANTS if (w == "tensorflow-lod") == (v == "orig")] + [
    ("pytorch", "orig"), ("pytorch-train.py", "orig"), ("tensorflow", "orig")]


@pytest.mark.parametrize("writer,variant", CASES)
def test_import_variants_generate_the_same_images(tmp_path, writer, variant):
    """Conditional, grayscale, resnet and orig networks in both formats import to the same G and D."""
    G, D = make_nets(seed=11, **VARIANTS[variant])
    marker = tmp_path / "executed.txt"
    pkl = WRITERS[writer](tmp_path / "network-snapshot-000120.pkl", G, D, marker=str(marker))
    model = load_model(import_nvidia_pickle(pkl, tmp_path / "model"), device="cpu", with_discriminator=True)
    assert model.G.config == G.config and model.D.config.architecture == D.config.architecture
    assert {k: v.shape for k, v in model.D.state_dict().items()} == {k: v.shape for k, v in D.state_dict().items()}
    assert_same_images(G, model.G)
    assert_same_logits(D, model.D)
    assert not marker.exists()
    assert model.provenance["kimg"] == 120


def test_tf_conditional_model_without_label_embedding_is_refused(tmp_path):
    # Original (non-ADA) TF StyleGAN2 concatenates labels unnormalised (LabelConcat): a different network.
    G, D = make_nets(seed=12, c_dim=3)
    import latentstudio.io.nvidia as nvidia

    pkl = write_tf_pickle(tmp_path / "old.pkl", G, D)
    nets = nvidia.safe_load(pkl)
    mapping = nets[2].components["mapping"]
    mapping.variables = [(k.replace("LabelEmbed", "LabelConcat"), v) for k, v in mapping.variables]
    with pytest.raises(ModelFormatError, match="LabelConcat.*only StyleGAN2-ADA's LabelEmbed"):
        nvidia._tf_generator(nets[2], pkl)


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

"""Golden test of the TensorFlow StyleGAN2(-ADA) importer.

The other TF import tests write pickles from our own networks, so an error made the same way on export and import
(a transposed or flipped kernel, a misplaced bias offset) cancels out. Here the pickle holds random variables
drawn directly under TF's names and layouts, and the expected ws and images come from `tf_reference`, a numpy
forward pass of NVIDIA's TF graph that shares no code with our models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentstudio.cli import main
from latentstudio.io.model_dir import load_model

from . import tf_reference
from .nvidia_fixtures import write_tf_networks

TOL = 1e-4  # float32 model vs float64 reference

# G static kwargs as a TF pickle stores them (what the training run set): 16 px, 32 -> 24 -> 12 channels.
BASE = dict(num_channels=3, resolution=16, label_size=0, latent_size=32, dlatent_size=32, mapping_layers=2,
            fmap_base=96, fmap_max=32, architecture="skip", truncation_psi=0.5)
VARIANTS = {  # name: (static kwargs over BASE, variable widths that the kwargs leave to the network's defaults)
    "rgb": ({}, {}),
    # StyleGAN2-ADA: LabelEmbed is latent_size wide unless label_fmaps is set (w_dim in stylegan2-ada-pytorch);
    # conv_clamp as its fp16 configs set it (256 there; small here, so that it clamps).
    "conditional-clamp": (dict(label_size=3, latent_size=24, conv_clamp=0.75), dict(embed=24)),
    # Original TF StyleGAN2: mapping_fmaps defaults to 512 whatever dlatent_size is.
    "grayscale-stylegan2": (dict(num_channels=1), dict(hidden=512)),
}


def nf(kwargs, stage):
    """G_synthesis' feature maps at a stage (fmap_decay 1, fmap_min 1)."""
    return int(np.clip(int(kwargs["fmap_base"] / 2.0 ** stage), 1, kwargs["fmap_max"]))


def random_tf_generator(seed, kwargs, hidden=None, embed=None):
    """Gs's variables at random, at the scale of a trained network: {'dlatent_avg', 'mapping', 'synthesis'}."""
    rng = np.random.default_rng(seed)

    def normal(shape, std=1.0):
        return np.asarray(rng.standard_normal(shape) * std, dtype=np.float32)

    w_dim, lrmul = kwargs["dlatent_size"], kwargs.get("mapping_lrmul", 0.01)
    mapping, fan_in = {}, kwargs["latent_size"]
    if kwargs["label_size"]:
        mapping.update({"LabelEmbed/weight": normal([kwargs["label_size"], embed]), "LabelEmbed/bias": normal([embed])})
        fan_in += embed
    for i in range(kwargs["mapping_layers"]):
        out = w_dim if i == kwargs["mapping_layers"] - 1 else (hidden or w_dim)
        # TF stores these at init std 1/lrmul (and biases in the same units): runtime values of order 1.
        mapping[f"Dense{i}/weight"] = normal([fan_in, out], 1 / lrmul)
        mapping[f"Dense{i}/bias"] = normal([out], 0.5 / lrmul)
        fan_in = out
    synth = {"4x4/Const/const": normal([1, nf(kwargs, 1), 4, 4])}

    def modconv(scope, kernel, cin, cout, noise_idx=None):
        synth.update({f"{scope}/weight": normal([kernel, kernel, cin, cout]), f"{scope}/bias": normal([cout], 0.3),
                      f"{scope}/mod_weight": normal([w_dim, cin]), f"{scope}/mod_bias": normal([cin], 0.3)})
        if noise_idx is not None:
            r = 2 ** ((noise_idx + 5) // 2)
            synth.update({f"{scope}/noise_strength": normal([], 0.5), f"noise{noise_idx}": normal([1, 1, r, r])})

    channels = kwargs["num_channels"]
    modconv("4x4/Conv", 3, nf(kwargs, 1), nf(kwargs, 1), 0)
    modconv("4x4/ToRGB", 1, nf(kwargs, 1), channels)
    for res in range(3, int(np.log2(kwargs["resolution"])) + 1):
        scope = f"{2 ** res}x{2 ** res}"
        modconv(f"{scope}/Conv0_up", 3, nf(kwargs, res - 2), nf(kwargs, res - 1), res * 2 - 5)
        modconv(f"{scope}/Conv1", 3, nf(kwargs, res - 1), nf(kwargs, res - 1), res * 2 - 4)
        modconv(f"{scope}/ToRGB", 1, nf(kwargs, res - 1), channels)
    return {"dlatent_avg": normal([w_dim]), "mapping": mapping, "synthesis": synth}


def import_tf(tmp_path, kwargs, gvars):
    """Write Gs as a TF pickle and bring it in with `latentstudio import`, as a user would."""
    pkl = write_tf_networks(tmp_path / "network.pkl", kwargs, gvars)
    assert main(["import", str(pkl), "--out", str(tmp_path / "model")]) == 0
    return load_model(tmp_path / "model", device="cpu").G


def inputs(kwargs, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, kwargs["latent_size"], generator=g)
    c = torch.nn.functional.one_hot(torch.arange(n) % kwargs["label_size"], kwargs["label_size"]).float() \
        if kwargs["label_size"] else None
    return z, c


def max_diff(ours, ref):
    assert tuple(ours.shape) == ref.shape
    return float(np.abs(ours.double().numpy() - ref).max())


@pytest.fixture(scope="module", params=list(VARIANTS))
def golden(request, tmp_path_factory):
    overrides, widths = VARIANTS[request.param]
    kwargs = {**BASE, **overrides}
    gvars = random_tf_generator(seed=len(request.param), kwargs=kwargs, **widths)
    return kwargs, gvars, import_tf(tmp_path_factory.mktemp(request.param), kwargs, gvars)


@pytest.mark.parametrize("psi", [1.0, 0.7])
def test_tf_import_matches_the_numpy_reference(golden, psi):
    kwargs, gvars, G = golden
    z, c = inputs(kwargs)
    ref_ws, ref_img = tf_reference.generate(gvars, kwargs, z.numpy(), None if c is None else c.numpy(), psi)
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=psi)
        img = G.synthesis(ws, noise_mode="const")
        img_from_ref_ws = G.synthesis(torch.from_numpy(ref_ws).float(), noise_mode="const")
    assert ref_img.shape == (3, kwargs["num_channels"], kwargs["resolution"], kwargs["resolution"])
    assert np.abs(ref_img).max() > 0.5 and np.abs(ref_img).std() > 0.1  # a real image, not a vanishing signal
    assert max_diff(ws, ref_ws) < TOL, "mapping (ws) differs from TF's"
    assert max_diff(img_from_ref_ws, ref_img) < TOL, "synthesis differs from TF's on the same ws"
    assert max_diff(img, ref_img) < TOL


def test_the_clamp_variant_clamps():
    overrides, widths = VARIANTS["conditional-clamp"]
    kwargs = {**BASE, **overrides}
    gvars = random_tf_generator(seed=0, kwargs=kwargs, **widths)
    z, c = inputs(kwargs)
    _, clamped = tf_reference.generate(gvars, kwargs, z.numpy(), c.numpy())
    _, free = tf_reference.generate(gvars, {**kwargs, "conv_clamp": None}, z.numpy(), c.numpy())
    assert np.abs(clamped - free).max() > 1


def test_the_reference_catches_a_symmetric_kernel_flip(tmp_path):
    """What the round-trip tests cannot see: import a pickle whose up-sampling kernels are flipped, as an
    exporter and importer that both flipped them (or neither did) would; the reference must tell."""
    kwargs = dict(BASE)
    gvars = random_tf_generator(seed=1, kwargs=kwargs)
    flipped = {**gvars, "synthesis": {k: (v[::-1, ::-1].copy() if k.endswith("Conv0_up/weight") else v)
                                      for k, v in gvars["synthesis"].items()}}
    G = import_tf(tmp_path, kwargs, flipped)
    z, _ = inputs(kwargs)
    _, ref_img = tf_reference.generate(gvars, kwargs, z.numpy())
    with torch.no_grad():
        assert max_diff(G(z, None, noise_mode="const"), ref_img) > 100 * TOL

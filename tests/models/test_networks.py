"""Generator and discriminator behaviour on tiny configs."""

import numpy as np
import pytest
import torch

from latentstudio.config import ConfigError
from latentstudio.latent.seeds import z_from_seeds
from latentstudio.models import Discriminator, Generator, GeneratorConfig, get_preset, preset_names, style_mix
from latentstudio.models.config import num_ws

from ..helpers import make_tiny


@pytest.mark.parametrize("res,channels,c_dim,arch", [(16, 3, 0, "skip"), (32, 1, 0, "skip"), (32, 3, 4, "skip"),
                                                    (16, 3, 0, "resnet"), (16, 3, 0, "orig")])
def test_shapes_and_finiteness(res, channels, c_dim, arch):
    G, D = make_tiny(resolution=res, img_channels=channels, c_dim=c_dim, architecture=arch)
    n = 4
    z = torch.randn(n, G.z_dim)
    c = torch.nn.functional.one_hot(torch.arange(n) % c_dim, c_dim).float() if c_dim else None
    ws = G.mapping(z, c, truncation_psi=0.7)
    assert ws.shape == (n, num_ws(res), G.w_dim) == (n, G.num_ws, G.w_dim)
    for mode in ("const", "random", "none"):
        img = G.synthesis(ws, noise_mode=mode)
        assert img.shape == (n, channels, res, res)
        assert torch.isfinite(img).all()
    logits = D(img, c)
    assert logits.shape == (n, 1) and torch.isfinite(logits).all()


def test_every_parameter_gets_a_gradient():
    G, D = make_tiny(c_dim=3)
    G.train()
    D.train()
    z = torch.randn(4, G.z_dim)
    c = torch.eye(3)[[0, 1, 2, 0]]
    img = G(z, c, noise_mode="random")
    D(img, c).sum().backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_fused_and_unfused_modconv_agree():
    G, _ = make_tiny()
    ws = G.mapping(torch.randn(3, G.z_dim), None)
    a = G.synthesis(ws, fused_modconv=True)
    b = G.synthesis(ws, fused_modconv=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_seed_determinism_and_nvidia_seed_semantics():
    G, _ = make_tiny()
    z = z_from_seeds([0, 0, 5], G.z_dim)
    np.testing.assert_allclose(z[0].numpy(), np.random.RandomState(0).randn(G.z_dim).astype(np.float32))
    assert abs(float(z[0, 0]) - 1.7640524) < 1e-6  # numpy RandomState(0).randn()[0]
    img = G(z, noise_mode="const")
    assert torch.equal(img[0], img[1])
    assert not torch.allclose(img[0], img[2])
    assert torch.equal(img, G(z, noise_mode="const"))
    torch.manual_seed(1)
    r1 = G(z, noise_mode="random")
    torch.manual_seed(1)
    assert torch.equal(r1, G(z, noise_mode="random"))


def test_truncation():
    G, _ = make_tiny()
    z = torch.randn(5, G.z_dim)
    ws = G.mapping(z, None)
    ws0 = G.mapping(z, None, truncation_psi=0.0)
    assert torch.allclose(ws0, G.mapping.w_avg.expand_as(ws0))
    half = G.mapping(z, None, truncation_psi=0.5)
    torch.testing.assert_close(half, G.mapping.w_avg + 0.5 * (ws - G.mapping.w_avg))
    cut = G.mapping(z, None, truncation_psi=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], G.mapping.w_avg.expand(5, 2, -1))
    assert torch.equal(cut[:, 2:], ws[:, 2:])


def test_w_avg_tracks_only_in_training():
    G, _ = make_tiny()
    before = G.mapping.w_avg.clone()
    G.mapping(torch.randn(8, G.z_dim), None)
    assert torch.equal(G.mapping.w_avg, before)
    G.train()
    G.mapping(torch.randn(8, G.z_dim), None)
    assert not torch.equal(G.mapping.w_avg, before)


def test_style_mixing_takes_coarse_and_fine_layers():
    G, _ = make_tiny()
    wa = G.mapping(torch.randn(2, G.z_dim), None)
    wb = G.mapping(torch.randn(2, G.z_dim), None)
    mixed = style_mix(wa, wb, 3)
    assert torch.equal(mixed[:, :3], wa[:, :3]) and torch.equal(mixed[:, 3:], wb[:, 3:])
    img = G.synthesis(mixed)
    assert not torch.allclose(img, G.synthesis(wa)) and not torch.allclose(img, G.synthesis(wb))


def test_synthesis_rejects_wrong_ws_shape():
    G, _ = make_tiny()
    with pytest.raises(ValueError, match="expected"):
        G.synthesis(torch.zeros(1, G.num_ws + 1, G.w_dim))


def test_presets_build_and_config_round_trips():
    for name in preset_names():
        preset = get_preset(name)
        again = type(preset).from_dict(preset.to_dict())
        assert again == preset
    with pytest.raises(ConfigError, match="unknown preset"):
        get_preset("nope")
    with pytest.raises(ConfigError, match="power of two"):
        get_preset("tiny", resolution=48)
    with pytest.raises(ConfigError, match="unknown field"):
        GeneratorConfig.from_dict({"z_dimm": 3})


def test_paper_presets_match_ada_configs():
    p = get_preset("paper256")
    G = p.generator
    assert (G.synthesis.channel_base, G.synthesis.channel_max, G.mapping.num_layers) == (16384, 512, 8)
    assert p.training.batch == 64 and p.training.gamma == 1.0
    f = get_preset("stylegan2")
    assert f.generator.img_resolution == 1024 and f.generator.synthesis.channel_base == 32768


def test_bf16_precision_is_opt_in_and_close():
    # A realistic width (the tiny nets are too chaotic for a precision comparison).
    torch.manual_seed(0)
    preset = get_preset("cpu128", resolution=32, img_channels=1)
    cfg = preset.generator.replace(synthesis=preset.generator.synthesis.replace(num_fp16_res=2, conv_clamp=256))
    G16 = Generator(cfg).eval()
    ws = G16.mapping(torch.randn(2, G16.z_dim), None)
    ref = G16.synthesis(ws)
    low = G16.synthesis(ws, precision="bf16")
    assert low.dtype == torch.float32 and low.shape == ref.shape == (2, 1, 32, 32)
    assert (low - ref).abs().mean() < 0.02 * ref.abs().mean()
    with pytest.raises(ValueError, match="CUDA"):
        G16.synthesis(ws, precision="fp16")


def test_discriminator_minibatch_std_group():
    _, D = make_tiny()
    with pytest.raises(ValueError, match="divisible"):
        D(torch.randn(3, 3, 32, 32))
    D2 = Discriminator(D.config.replace(epilogue=D.config.epilogue.replace(mbstd_group_size=None)))
    assert D2(torch.randn(3, 3, 32, 32)).shape == (3, 1)


def test_discriminator_with_reduced_precision_blocks_runs_resnet_and_orig():
    # Regression: with num_fp16_res > 0 the resnet/orig D read img.device after img had become None.
    for arch in ("resnet", "orig", "skip"):
        preset = get_preset("tiny", resolution=16)
        D = Discriminator(preset.discriminator.replace(num_fp16_res=2, conv_clamp=256, architecture=arch)).eval()
        img = torch.randn(2, 3, 16, 16)
        out = D(img)
        assert out.shape == (2, 1) and torch.isfinite(out).all()
        low = D(img, precision="bf16")
        assert torch.isfinite(low).all() and (low - out).abs().max() < 0.1 * out.abs().max() + 0.05


# --------------------------------------------------------------------------- parameter counts (meta device)


def _nvidia_g_params(cfg) -> int:
    """stylegan2-ada-pytorch Generator parameter count, written out from its layer shapes."""
    s, w = cfg.synthesis, cfg.w_dim
    ch = lambda r: min(s.channel_base // r, s.channel_max)
    fc = lambda i, o: i * o + o
    layer = lambda i, o, k=3: fc(w, i) + o * i * k * k + o + (1 if s.use_noise else 0)  # affine, weight, bias, noise
    torgb = lambda i: fc(w, i) + cfg.img_channels * i + cfg.img_channels
    embed = (cfg.mapping.embed_features or w) if cfg.c_dim else 0
    hidden = cfg.mapping.layer_features or w
    feats = [cfg.z_dim + embed] + [hidden] * (cfg.mapping.num_layers - 1) + [w]
    total = sum(fc(a, b) for a, b in zip(feats[:-1], feats[1:], strict=True)) + (fc(cfg.c_dim, embed) if embed else 0)
    res = 4
    total += ch(4) * 16 + layer(ch(4), ch(4))
    while res <= cfg.img_resolution:
        if res > 4:
            total += layer(ch(res // 2), ch(res)) + layer(ch(res), ch(res))
            if s.architecture == "resnet":
                total += ch(res // 2) * ch(res)  # 1x1 skip, no bias
        if s.architecture == "skip" or res == cfg.img_resolution:
            total += torgb(ch(res))
        res *= 2
    return total


def _nvidia_d_params(cfg) -> int:
    """stylegan2-ada-pytorch Discriminator (resnet) parameter count from its layer shapes."""
    assert cfg.architecture == "resnet"
    ch = lambda r: min(cfg.channel_base // r, cfg.channel_max)
    conv = lambda i, o, k=3, bias=True: o * i * k * k + (o if bias else 0)
    total, res = 0, cfg.img_resolution
    while res > 4:
        tmp, out = ch(res), ch(res // 2)
        if res == cfg.img_resolution:
            total += conv(cfg.img_channels, tmp, 1)
        total += conv(tmp, tmp) + conv(tmp, out) + conv(tmp, out, 1, bias=False)
        res //= 2
    c4 = ch(4)
    cmap = (cfg.cmap_dim or c4) if cfg.c_dim else 0
    total += conv(c4 + cfg.epilogue.mbstd_num_channels, c4) + (c4 * 16 * c4 + c4) + (c4 * (cmap or 1) + (cmap or 1))
    if cfg.c_dim:
        m = cfg.mapping
        embed, hidden = m.embed_features or cmap, m.layer_features or cmap
        feats = [embed] + [hidden] * (m.num_layers - 1) + [cmap]
        total += cfg.c_dim * embed + embed + sum(a * b + b for a, b in zip(feats[:-1], feats[1:], strict=True))
    return total


@pytest.mark.parametrize("name,overrides", [(n, {}) for n in preset_names()] + [
    ("tiny", dict(c_dim=5, img_channels=1)), ("cpu128", dict(resolution=1024)), ("paper256", dict(c_dim=10))])
def test_every_preset_builds_on_meta_with_nvidias_parameter_counts(name, overrides):
    from latentstudio.models.summary import count_parameters

    preset = get_preset(name, **overrides)
    with torch.device("meta"):  # shapes only: even 1024 px configs build instantly, without memory
        G, D = Generator(preset.generator), Discriminator(preset.discriminator)
    assert G.synthesis.b4.const.is_meta and G.img_resolution == preset.generator.img_resolution
    assert count_parameters(G) == _nvidia_g_params(preset.generator)
    assert count_parameters(D) == _nvidia_d_params(preset.discriminator)
    if name == "stylegan2":  # config-f: NVIDIA's published G_ema size (stylegan2-ada-pytorch, FFHQ 1024)
        assert count_parameters(G) == 30_370_060
        assert count_parameters(D) == 29_012_513  # summed by hand from config-f's layer table


def test_meta_counts_cover_resnet_and_orig_generators():
    from latentstudio.models.summary import count_parameters

    for arch in ("resnet", "orig"):
        cfg = get_preset("paper256").generator
        cfg = cfg.replace(synthesis=cfg.synthesis.replace(architecture=arch))
        with torch.device("meta"):
            G = Generator(cfg)
        assert count_parameters(G) == _nvidia_g_params(cfg)

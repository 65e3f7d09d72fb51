"""The image -> W+ encoder: format round trip, checks against the generator, training, the live path."""

import json
import warnings

import pytest
import torch
from PIL import Image

from latentstudio.errors import ModelFormatError
from latentstudio.invert import (
    Encoder,
    EncoderConfig,
    EncoderTrainConfig,
    LiveProjector,
    default_encoder_dir,
    live_project,
    load_encoder,
    psnr,
    save_encoder,
    train_encoder,
    w_statistics,
)
from latentstudio.invert.encoder import generator_fingerprint
from latentstudio.invert.train_encoder import learning_rate

from ..helpers import make_tiny

FAST = EncoderTrainConfig(steps=200, batch=8, lr=3e-3, vgg_weight=0.0, recon_start=0.5, val_size=8, log_every=0)
SMALL = dict(channel_base=256, channel_max=64, hidden=128)


@pytest.fixture(scope="module")
def G():
    return make_tiny(seed=0)[0]


@pytest.fixture(scope="module")
def trained(G):
    before = {k: v.clone() for k, v in G.state_dict().items()}
    encoder, summary = train_encoder(G, FAST, encoder_config=EncoderConfig.for_generator(G, **SMALL), device="cpu",
                                     progress=False)
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # the generator stays untouched
    return encoder, summary


def test_untrained_encoder_answers_the_mean_w(G):
    enc = Encoder(EncoderConfig.for_generator(G))
    stats = w_statistics(G, 500, device="cpu")
    enc.set_w_stats(stats.w_avg, stats.w_std)
    ws = enc(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert ws.shape == (2, G.num_ws, G.w_dim)
    torch.testing.assert_close(ws, stats.w_avg.expand_as(ws))


def test_training_learns_latents(G, trained):
    encoder, summary = trained
    stats = w_statistics(G, 2000, device="cpu")
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(77))
    with torch.no_grad():
        ws = stats.w_avg.lerp(G.mapping(z, None), 0.7)
        targets = G.synthesis(ws, noise_mode="const")
        guess = G.synthesis(encoder(targets), noise_mode="const")
        mean = G.synthesis(stats.w_avg.reshape(1, 1, -1).expand_as(ws), noise_mode="const")
    assert psnr(guess, targets).mean() > psnr(mean, targets).mean() + 3
    assert summary["latent_error"] < 0.5  # the mean-w guess scores about 1 (per-dimension spread of w)
    assert summary["steps"] == FAST.steps


def test_the_w_head_learns_single_ws(G, trained):
    encoder, summary = trained
    assert encoder.config.w_head and 0 < summary["w_latent_error"] < 0.5  # the mean w scores about 1
    stats = w_statistics(G, 2000, device="cpu")
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(78))
    with torch.no_grad():
        w = stats.w_avg.lerp(G.mapping(z, None), 0.7)  # single ws, as a W projection's answer is
        targets = G.synthesis(w, noise_mode="const")
        start = encoder.guess(targets, "w")
        guess = G.synthesis(start, noise_mode="const")
        mean = G.synthesis(stats.w_avg.reshape(1, 1, -1).expand_as(w), noise_mode="const")
    assert start.shape == w.shape and torch.equal(start, start[:, :1].expand_as(start))
    assert (start[:, 0] - w[:, 0]).square().mean() < 0.7 * (stats.w_avg - w[:, 0]).square().mean()
    assert psnr(guess, targets).mean() > psnr(mean, targets).mean() + 3
    torch.testing.assert_close(encoder.guess(targets, "w+"), encoder(targets))
    with pytest.raises(ValueError, match="space 'z'"):
        encoder.guess(targets, "z")


def test_an_older_encoder_gets_a_w_head_that_starts_where_its_w_start_was(tmp_path, G):
    old = Encoder(EncoderConfig.for_generator(G, **SMALL, w_head=False))
    with torch.no_grad():  # some trained-looking head
        old.head1.weight.normal_(0, 0.02, generator=torch.Generator().manual_seed(5))
        old.head1.bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(6))
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    grown = old.with_w_head()
    assert grown.config.w_head and grown.with_w_head() is grown
    torch.testing.assert_close(grown(x), old(x))
    torch.testing.assert_close(grown.guess(x, "w"), old.guess(x, "w"))  # the mean of the W+ rows, for now
    assert not torch.equal(old.guess(x, "w"), old(x))
    # a config written before the field existed is an encoder without a head
    save_encoder(tmp_path / "old", old)
    path = tmp_path / "old" / "config.json"
    data = json.loads(path.read_text())
    del data["config"]["w_head"]
    path.write_text(json.dumps(data))
    loaded = load_encoder(tmp_path / "old", G, device="cpu")
    assert not loaded.config.w_head
    torch.testing.assert_close(loaded.guess(x, "w"), old.guess(x, "w"))


def test_save_load_round_trip(tmp_path, G, trained):
    encoder, _ = trained
    save_encoder(tmp_path / "enc", encoder, {"generator_fingerprint": generator_fingerprint(G)})
    cfg = json.loads((tmp_path / "enc" / "config.json").read_text())
    assert cfg["arch"] == "latentstudio-encoder" and cfg["config"]["num_ws"] == G.num_ws
    loaded = load_encoder(tmp_path / "enc", G, device="cpu")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert cfg["config"]["w_head"] and loaded.config.w_head
    torch.testing.assert_close(loaded.guesses(x), encoder.guesses(x))


def test_float16_file_is_half_the_size_and_loads_as_float32(tmp_path, G, trained):
    encoder, _ = trained
    save_encoder(tmp_path / "f32", encoder)
    save_encoder(tmp_path / "f16", encoder, dtype=torch.float16)
    f32, f16 = ((tmp_path / d / "encoder.safetensors").stat().st_size for d in ("f32", "f16"))
    assert f16 < 0.55 * f32
    loaded = load_encoder(tmp_path / "f16", G, device="cpu")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    ref = encoder(x)
    # float16 keeps about 3 significant digits of each weight: the guesses move by far less than their spread.
    assert (loaded(x) - ref).abs().max() < 0.02 * ref.std() + 1e-3
    assert not torch.equal(loaded(x), ref)


def test_encoder_for_another_generator(tmp_path, G, trained):
    encoder, _ = trained
    save_encoder(tmp_path / "enc", encoder, {"generator_fingerprint": generator_fingerprint(G)})
    other = make_tiny(seed=1)[0]  # same shapes, other weights: usable, with a warning
    with pytest.warns(UserWarning, match="other generator"):
        load_encoder(tmp_path / "enc", other, device="cpu")
    bigger = make_tiny(resolution=64)[0]
    with pytest.raises(ModelFormatError, match="train-encoder"):
        load_encoder(tmp_path / "enc", bigger, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_encoder(tmp_path / "enc", G, device="cpu")


def test_missing_or_foreign_encoder_dirs(tmp_path, tiny_model_dir):
    with pytest.raises(ModelFormatError, match="train-encoder"):
        load_encoder(tmp_path / "nothing")
    with pytest.raises(ModelFormatError, match="not an encoder"):
        load_encoder(tiny_model_dir)  # a generator directory is not an encoder
    assert default_encoder_dir(tiny_model_dir) == tiny_model_dir / "encoder"
    assert default_encoder_dir(tmp_path / "net.pkl") == tmp_path / "net-encoder"


def test_live_projection_improves_on_the_encoder_within_budget(G, trained):
    encoder, _ = trained
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        target = G.synthesis(encoder.w_avg.lerp(G.mapping(z, None), 0.6), noise_mode="const")
        guess_psnr = float(psnr(G.synthesis(encoder(target), noise_mode="const"), target)[0])
    live = LiveProjector(G, encoder, config=_pixel_live(), device="cpu")
    result = live(target, budget_s=2.0)
    assert result.ws.shape == (1, G.num_ws, G.w_dim) and result.steps > 0
    assert result.psnr > guess_psnr
    assert result.seconds < 2.0 + 1.5  # finishes about on time (slack for a busy machine)


def test_live_project_takes_pil_drawings(G, trained):
    encoder, _ = trained
    drawing = Image.new("RGB", (60, 40), "white")  # not square, not the model's size
    drawing.paste((30, 30, 30), (20, 10, 40, 30))
    result = live_project(G, encoder, drawing, budget_s=0.5, config=_pixel_live())
    assert result.image.size == (32, 32) and result.ws.shape == (1, G.num_ws, G.w_dim)


def _pixel_live():
    from latentstudio.invert import LIVE_CONFIG

    return LIVE_CONFIG.replace(loss="pixel")


def test_live_projector_for_a_model_dir_with_and_without_encoder(tmp_path, tiny_model_dir, trained):
    import shutil

    from latentstudio.invert import live_projector_for
    from latentstudio.io.registry import open_model

    shutil.copytree(tiny_model_dir, tmp_path / "m")
    model = open_model(tmp_path / "m", device="cpu")
    bare = live_projector_for(model, device="cpu", config=_pixel_live())
    assert bare.encoder is None and bare.config.lr == 0.1  # mean-w start settings
    target = torch.zeros(1, 3, 32, 32)
    torch.testing.assert_close(bare.guess(target), bare.stats.w_avg.expand(1, model.G.num_ws, -1))
    assert bare(target, budget_s=0.5).ws.shape == (1, model.G.num_ws, model.G.w_dim)
    save_encoder(default_encoder_dir(tmp_path / "m"), trained[0], {})
    assert live_projector_for(model, device="cpu", config=_pixel_live()).encoder is not None


@pytest.mark.parametrize("w_head", [False, True])
def test_a_perfect_guess_costs_nothing_despite_random_noise(G, w_head):
    # The encoder sees renders with random per-pixel noise; its guess must be judged against the true latents
    # rendered with the constant noise it is rendered with itself, or a perfect guess would still be penalised.
    # With a W head the latents are single ws (the head's rows are trained on those) and its row is exact too.
    import types

    from latentstudio.invert.train_encoder import _recon_loss, _step_loss

    ws = w_statistics(G, 500, device="cpu").w_avg.reshape(1, 1, -1).expand(3, G.num_ws, -1).clone()
    noise = 0.5 * torch.randn(ws.shape, generator=torch.Generator().manual_seed(0))
    ws += noise[:, :1] if w_head else noise
    rows = torch.cat([ws, ws[:, :1]], 1) if w_head else ws
    perfect = types.SimpleNamespace(config=types.SimpleNamespace(w_head=w_head, num_ws=G.num_ws),
                                    guesses=lambda images: rows.clone())
    perfect.starts = lambda r: Encoder.starts(perfect, r)  # the real split of the rows into starts
    cfg = FAST.replace(pixel_weight=1.0)
    loss = _step_loss(G, perfect, ws, 1.0, cfg, _recon_loss(cfg, None, "cpu"))
    assert float(loss.detach()) < 1e-8
    if w_head:  # a wrong W row is not free
        rows[:, -1] += 0.5
        assert float(_step_loss(G, perfect, ws, 1.0, cfg, _recon_loss(cfg, None, "cpu")).detach()) > 1e-3


def test_perceptual_term_trains_the_encoder(G, tmp_path):
    # The VGG16 reconstruction loss alone (latent and pixel terms off) must give a finite loss whose gradient
    # moves the encoder's guesses towards the targets: the term real runs rely on after recon_start.
    import math

    from latentstudio.invert.train_encoder import _recon_loss, evaluate_encoder, sample_training_ws

    from ..features.vgg_fixtures import tiny_convs, write_torchvision

    vgg = [write_torchvision(tmp_path / "vgg16-tiny.pth", tiny_convs())]
    cfg = FAST.replace(steps=30, latent_weight=0.0, pixel_weight=0.0, vgg_weight=1.0, recon_start=0.0,
                       log_every=10)
    loss_fn = _recon_loss(cfg, vgg, "cpu")
    assert loss_fn.vgg is not None and [t.name for t in loss_fn.terms] == ["vgg"]
    stats = w_statistics(G, device="cpu")
    ws = sample_training_ws(G, cfg.val_size, stats, cfg, torch.Generator().manual_seed(cfg.seed + 1), "cpu")
    with torch.no_grad():  # the validation set train_encoder draws (same seed)
        images = G.synthesis(ws, noise_mode="const")
    feats = loss_fn.target_features(images)

    def val_vgg(enc):
        with torch.no_grad():
            return float(loss_fn(G.synthesis(enc(images), noise_mode="const"), feats).mean())

    fresh = Encoder(EncoderConfig.for_generator(G, **SMALL, w_head=False))  # the W+ rows' training alone
    fresh.set_w_stats(stats.w_avg, stats.w_std)
    before = evaluate_encoder(G, fresh, images, ws, stats.w_std / G.w_dim ** 0.5)
    logs = []
    encoder, summary = train_encoder(G, cfg, encoder_config=fresh.config, features=vgg,
                                     device="cpu", progress=False, log=logs.append)
    losses = [float(line.split("loss ")[1].split()[0]) for line in logs]
    assert len(losses) == 3 and all(math.isfinite(v) and v > 0 for v in losses)
    assert val_vgg(encoder) < 0.93 * val_vgg(fresh)
    assert summary["psnr"] > before["psnr"] + 0.1, (before, summary)


def _pictures(G, count=40):
    from latentstudio.data.demo import demo_images
    from latentstudio.invert import image_to_target

    return torch.cat([image_to_target(img, G) for img in demo_images("smiles", count, 64, seed=3)])


def test_training_on_pictures_reconstructs_held_out_pictures_better(G):
    # Drawings are far from a random tiny model's renders: trained on pictures as well (same seed, same
    # steps), the encoder's guesses for pictures it never saw must re-render closer to them.
    from latentstudio.invert.train_encoder import evaluate_encoder, split_pictures

    pictures = _pictures(G)
    cfg = FAST.replace(steps=120, recon_start=0.0, real_batch=4)
    enc_cfg = EncoderConfig.for_generator(G, **SMALL)
    plain, _ = train_encoder(G, cfg, encoder_config=enc_cfg, device="cpu", progress=False)
    with_pictures, summary = train_encoder(G, cfg, encoder_config=enc_cfg, device="cpu", progress=False,
                                           images=pictures)
    train, held = split_pictures(G, pictures, cfg, "cpu")
    assert len(held) == 4 and len(train) == 36 and summary["held_out_pictures"] == 4
    assert not any(torch.equal(h, t) for h in held for t in train)  # held out means not trained on
    stats = w_statistics(G, device="cpu")
    scale = stats.w_std / G.w_dim ** 0.5
    with torch.no_grad():
        ws = plain(held)
        images = G.synthesis(ws, noise_mode="const")
    before = evaluate_encoder(G, plain, images, ws, scale, held)["real_psnr"]
    assert summary["real_psnr"] > before + 0.5, (before, summary)


def test_training_on_pictures_checks_them(G):
    from latentstudio.errors import ConfigError

    cfg = FAST.replace(steps=2)
    with pytest.raises(ConfigError, match="shape"):
        train_encoder(G, cfg, device="cpu", progress=False, images=torch.zeros(4, 3, 16, 16))
    with pytest.raises(ConfigError, match="reconstruction loss"):
        train_encoder(G, cfg.replace(pixel_weight=0.0, vgg_weight=0.0), device="cpu", progress=False,
                      images=_pictures(G, 4))
    with pytest.raises(ConfigError, match="real_batch"):
        EncoderTrainConfig(real_batch=-1)


def test_learning_rate_ramps_up_then_decays_to_five_percent():
    cfg = EncoderTrainConfig(steps=1000, lr=1e-3, warmup_steps=100)
    lrs = [learning_rate(cfg, step) for step in range(cfg.steps)]
    assert lrs[0] == pytest.approx(1e-5, rel=1e-3) and lrs[49] == pytest.approx(5e-4, rel=1e-2)
    assert all(a < b for a, b in zip(lrs[:99], lrs[1:100], strict=True))  # the ramp
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:], strict=False))  # then the cosine only falls
    assert lrs[-1] == pytest.approx(5e-5, rel=1e-3)
    assert learning_rate(EncoderTrainConfig(steps=1000, lr=1e-3), 0) == pytest.approx(1e-3)  # no ramp by default
    with pytest.raises(ValueError):
        EncoderTrainConfig(warmup_steps=-1)

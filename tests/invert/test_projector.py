"""The optimisation projector on a tiny generator.

A random-init generator is a fair subject when the target comes from a known latent near the mean w
(truncation psi 0.5): the loss landscape around w_avg is smooth there, as it is for a trained model, and the
answer is known exactly. Pixel loss keeps the tests fast; the VGG16 path is covered with a tiny VGG."""

import math

import numpy as np
import pytest
import torch

from latentstudio.invert import ProjectConfig, build_loss, project_images, psnr, w_statistics
from latentstudio.invert.projector import learning_rate, noise_regularization, refine_settings

from ..features.vgg_fixtures import tiny_convs, write_torchvision
from ..helpers import make_tiny


@pytest.fixture(scope="module")
def G():
    return make_tiny(seed=0)[0]


@pytest.fixture(scope="module")
def stats(G):
    return w_statistics(G, 2000, device="cpu")


@pytest.fixture(scope="module")
def known(G, stats):
    """Three targets rendered from known latents halfway between mapped samples and the mean w."""
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ws = stats.w_avg.lerp(G.mapping(z, None), 0.5)
        return ws, G.synthesis(ws, noise_mode="const")


def _cfg(**kw):
    base = dict(steps=100, loss="pixel", noise="const", w_avg_samples=2000)
    return ProjectConfig(**{**base, **kw})


def test_recovers_a_generated_image_and_beats_the_mean_start(G, stats, known):
    ws_true, targets = known
    proj = project_images(G, targets, _cfg(), w_stats=stats, device="cpu", progress=False)
    got = psnr(proj.images, targets)
    with torch.no_grad():
        mean_images = G.synthesis(stats.w_avg.reshape(1, 1, -1).expand(3, G.num_ws, -1), noise_mode="const")
    start = psnr(mean_images, targets)
    assert torch.all(got > 35), got
    assert torch.all(got > start + 20), (got, start)
    assert proj.ws.shape == (3, G.num_ws, G.w_dim)
    assert torch.allclose(proj.ws, proj.ws[:, :1].expand_as(proj.ws))  # W space: identical rows
    assert (proj.ws - ws_true).norm(dim=2).mean() < 0.05 * stats.w_std
    assert proj.loss_history.shape == (100, 3) and torch.all(proj.loss_history[-1] < proj.loss_history[0])


def test_w_plus_reconstructs_at_least_as_well_as_w(G, stats):
    # A style-mixed target (coarse layers from one latent, fine from another) is outside the W space.
    z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        w = stats.w_avg.lerp(G.mapping(z, None), 0.6)
        ws = torch.cat([w[:2, :4], w[2:, 4:]], dim=1)
        targets = G.synthesis(ws, noise_mode="const")
    res = {space: psnr(project_images(G, targets, _cfg(space=space, steps=150), w_stats=stats, device="cpu",
                                      progress=False).images, targets) for space in ("w", "w+")}
    assert torch.all(res["w+"] >= res["w"] - 0.5), res
    assert res["w+"].mean() > res["w"].mean() + 3, res


def test_batch_equals_one_by_one(G, stats, known):
    # Optimised noise inputs and noise on w are the per-target parts that must not leak between targets.
    _, targets = known
    cfg = _cfg(steps=25, noise="optimize", space="w+", w_noise=0.05)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    together = project_images(G, targets, cfg.replace(batch=3), w_stats=stats, device="cpu", progress=False)
    alone = [project_images(G, targets[i:i + 1], cfg.replace(batch=1), w_stats=stats, device="cpu",
                            progress=False) for i in range(3)]
    # float32 GEMMs round differently at batch 3 and 1 (the kernels block differently, and which kernels run
    # depends on the CPU: 3.6e-4 after 25 steps on one machine, under 1e-4 on another). A leak is far larger:
    # one target's noise on w alone moves w by ~0.05 w_std (~0.25 here).
    torch.testing.assert_close(together.ws, torch.cat([a.ws for a in alone]), rtol=1e-3, atol=2e-3)
    torch.testing.assert_close(together.loss_history, torch.cat([a.loss_history for a in alone], dim=1),
                               rtol=1e-2, atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # G itself is never changed
    assert all(p.grad is None for p in G.parameters())


def test_batches_of_any_size_give_the_same_answer(G, stats, known):
    _, targets = known
    cfg = _cfg(steps=10)
    a = project_images(G, targets, cfg.replace(batch=2), w_stats=stats, device="cpu", progress=False)
    b = project_images(G, targets, cfg.replace(batch=8), w_stats=stats, device="cpu", progress=False)
    torch.testing.assert_close(a.ws, b.ws, rtol=1e-4, atol=1e-4)
    assert len(a.seconds) == 3


def test_init_latents_start_next_to_the_answer(G, stats, known):
    ws_true, targets = known
    near = ws_true + 0.02 * stats.w_std * torch.randn(ws_true.shape, generator=torch.Generator().manual_seed(1))
    cfg = _cfg(steps=10, lr=0.01, w_noise=0.0, lr_rampup=0.0)
    from_near = project_images(G, targets, cfg, init_ws=near, w_stats=stats, device="cpu", progress=False)
    from_mean = project_images(G, targets, cfg, w_stats=stats, device="cpu", progress=False)
    assert torch.all(psnr(from_near.images, targets) > psnr(from_mean.images, targets) + 10)


def test_perceptual_loss_with_a_vgg_file(G, stats, known, tmp_path):
    _, targets = known
    path = write_torchvision(tmp_path / "vgg.pth", tiny_convs())
    loss = build_loss("vgg+pixel", features=[path], device="cpu")
    proj = project_images(G, targets[:1], _cfg(steps=40, loss="vgg+pixel"), loss=loss, w_stats=stats,
                          device="cpu", progress=False)
    assert proj.loss_history[-1, 0] < 0.5 * proj.loss_history[0, 0]


def test_time_budget_stops_the_run(G, stats, known):
    _, targets = known
    proj = project_images(G, targets[:1], _cfg(steps=10**6), w_stats=stats, device="cpu", progress=False,
                          time_budget_s=1.0)
    assert 1 <= proj.steps < 10**6 and proj.seconds[0] < 10


def test_recorded_history_for_videos(G, stats, known):
    _, targets = known
    proj = project_images(G, targets[:2], _cfg(steps=9), w_stats=stats, device="cpu", progress=False,
                          record_every=4)
    assert proj.frame_steps == [1, 4, 8, 9]
    assert proj.w_history.shape == (4, 2, G.num_ws, G.w_dim)
    torch.testing.assert_close(proj.w_history[-1], proj.ws)


def test_learning_rate_schedule_matches_nvidia():
    cfg = ProjectConfig(lr=0.1, lr_rampup=0.05, lr_rampdown=0.25)
    assert learning_rate(0.0, cfg) == 0.0
    assert math.isclose(learning_rate(0.025, cfg), 0.05)  # halfway up the linear ramp
    assert math.isclose(learning_rate(0.5, cfg), 0.1)
    assert math.isclose(learning_rate(0.875, cfg), 0.05, rel_tol=1e-9)  # halfway down the cosine
    assert learning_rate(1.0, cfg) < 1e-12


def test_refine_settings_by_start_and_space():
    assert refine_settings(True) == refine_settings(True, "w+") == {"lr": 0.1, "w_noise": 0.05}
    assert refine_settings(False, "w") == {"lr": 0.1, "w_noise": 0.0}  # a guess in W: a higher peak
    assert refine_settings(False, "w+") == {"lr": 0.05, "w_noise": 0.0}
    ProjectConfig(**refine_settings(False, "w"))  # valid config fields


def test_noise_regularization_penalises_correlated_noise():
    g = torch.Generator().manual_seed(0)
    white = torch.randn(2, 1, 32, 32, generator=g)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(2, 1, 64, 64, generator=g), 2)
    smooth = torch.nn.functional.interpolate(smooth, scale_factor=1.0)
    smooth = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(smooth, (1, 1, 1, 1), mode="circular"), 3, 1)
    smooth = smooth / smooth.std()
    r_white = noise_regularization([white], 2, "cpu")
    r_smooth = noise_regularization([smooth], 2, "cpu")
    assert r_white.shape == (2,) and torch.all(r_smooth > 20 * r_white)
    both = noise_regularization([torch.cat([white[:1], smooth[:1]])], 2, "cpu")
    torch.testing.assert_close(both, torch.stack([r_white[0], r_smooth[0]]))  # per target


def test_bad_targets_are_refused(G, stats):
    from latentstudio.errors import UserError

    with pytest.raises(UserError, match="expected|needs"):
        project_images(G, torch.zeros(1, 3, 16, 16), _cfg(steps=1), w_stats=stats, device="cpu", progress=False)
    with pytest.raises(UserError, match="start latents"):
        project_images(G, torch.zeros(1, 3, 32, 32), _cfg(steps=1), init_ws=np.zeros((1, 2, 3)), w_stats=stats,
                       device="cpu", progress=False)


def test_progress_history_of_batches_that_ran_different_lengths(G, stats, known):
    # Under a time budget batches stop after different numbers of steps; the joined history must still hold
    # every target (the shorter batch repeats its final latent), so --save-video works for mixed batches.
    from latentstudio.invert.projector import _concat

    _, targets = known
    short, long = (project_images(G, targets[i:i + 1], _cfg(steps=s), w_stats=stats, device="cpu", progress=False,
                                  record_every=1) for i, s in ((0, 3), (1, 5)))
    both = _concat([short, long])
    assert both.w_history.shape == (5, 2, G.num_ws, G.w_dim) and both.frame_steps == [1, 2, 3, 4, 5]
    torch.testing.assert_close(both.w_history[:3, 0], short.w_history[:, 0])
    torch.testing.assert_close(both.w_history[3:, 0], short.w_history[-1:, 0].expand(2, -1, -1))
    torch.testing.assert_close(both.w_history[:, 1], long.w_history[:, 0])
    assert both.loss_history.shape == (5, 2) and torch.isnan(both.loss_history[3:, 0]).all()

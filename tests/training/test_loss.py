"""Losses, regularisers, EMA, ADA controller, optimizer and config maths."""

import math

import pytest
import torch
import torch.nn.functional as F

from latentstudio.config import ConfigError
from latentstudio.training.ada import AdaController
from latentstudio.training.augment import AugmentPipe
from latentstudio.training.config import AugmentConfig, LossConfig, resolve
from latentstudio.training.ema import ema_beta, update_ema
from latentstudio.training.loss import StyleGAN2Loss
from latentstudio.training.session import make_optimizer

from ..helpers import make_tiny


class LinearD(torch.nn.Module):
    """D(x) = <w, x>: its input gradient is w, so R1 = gamma/2 |w|^2 exactly."""

    def __init__(self, shape):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(shape))

    def forward(self, img, c=None):
        return (img * self.w).sum(dim=[1, 2, 3]).unsqueeze(1)


class ConstD(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.b = torch.nn.Parameter(torch.tensor(float(value)))

    def forward(self, img, c=None):
        return self.b.expand(img.shape[0], 1) + img.sum(dim=[1, 2, 3], keepdim=True)[:, :1] * 0


@pytest.fixture(scope="module")
def G():
    G, _ = make_tiny(resolution=16)
    return G.train()


def test_r1_penalty_and_its_gradient(G):
    D = LinearD([3, 16, 16])
    loss = StyleGAN2Loss(G, D, LossConfig(r1_gamma=0.5))
    real = torch.rand(4, 3, 16, 16) * 2 - 1
    stats = loss.discriminator_r1(real, None, gain=16)
    w = D.w.detach()
    assert torch.allclose(stats["loss/r1"], 0.25 * w.square().sum(), rtol=1e-5)
    # d/dw (gamma/2 |w|^2) * gain = gamma * w * gain
    assert torch.allclose(D.w.grad, 0.5 * w * 16, rtol=1e-4, atol=1e-5)


def test_non_saturating_logistic_losses(G):
    D = ConstD(0.7)
    loss = StyleGAN2Loss(G, D, LossConfig(style_mixing_prob=0))
    z = torch.randn(4, G.z_dim)
    g = loss.generator_main(z, None, 1.0)
    assert math.isclose(float(g["loss/G"]), float(F.softplus(torch.tensor(-0.7))), rel_tol=1e-6)
    D.b.grad = None
    d = loss.discriminator_main(torch.zeros(4, 3, 16, 16), None, z, None, 1.0)
    expected = float(F.softplus(torch.tensor(0.7)) + F.softplus(torch.tensor(-0.7)))
    assert math.isclose(float(d["loss/D"]), expected, rel_tol=1e-6)
    # dL/db = sigmoid(b) - sigmoid(-b) summed over fake and real terms
    assert math.isclose(float(D.b.grad), float(torch.sigmoid(torch.tensor(0.7)) - torch.sigmoid(torch.tensor(-0.7))),
                        rel_tol=1e-5)


def test_style_mixing_replaces_the_fine_layers(G):
    torch.manual_seed(0)
    z = torch.randn(2, G.z_dim)
    mixed = StyleGAN2Loss(G, ConstD(0), LossConfig(style_mixing_prob=1.0))
    _, ws = mixed.run_G(z, None)
    same = (ws == ws[:, :1]).all(dim=2).all(dim=0)  # per layer: equal to layer 0?
    k = int(same.long().argmin())  # the crossover layer
    assert k >= 1 and same[:k].all() and not same[k:].any()
    plain = StyleGAN2Loss(G, ConstD(0), LossConfig(style_mixing_prob=0.0))
    _, ws = plain.run_G(z, None)
    assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_path_length_mean_tracks_lengths(G):
    loss = StyleGAN2Loss(G, ConstD(0), LossConfig(pl_decay=0.01, pl_batch_shrink=2, style_mixing_prob=0))
    torch.manual_seed(1)
    G.zero_grad(set_to_none=True)
    stats = loss.generator_pl(torch.randn(4, G.z_dim), None, gain=4)
    first = float(loss.pl_mean)
    assert first > 0 and math.isclose(float(stats["pl_mean"]), first)
    assert G.synthesis.b16.conv1.weight.grad is not None
    loss.generator_pl(torch.randn(4, G.z_dim), None, gain=4)
    assert float(loss.pl_mean) > first  # moving up from 0 by 1% of the batch mean each time


def test_lazy_regularisation_corrects_adam():
    opt = make_optimizer(torch.nn.Linear(2, 2), 0.002, (0.0, 0.99), 16)
    group = opt.param_groups[0]
    assert math.isclose(group["lr"], 0.002 * 16 / 17)
    assert group["betas"][0] == 0 and math.isclose(group["betas"][1], 0.99 ** (16 / 17))
    plain = make_optimizer(torch.nn.Linear(2, 2), 0.002, (0.0, 0.99), None).param_groups[0]
    assert plain["lr"] == 0.002 and plain["betas"] == (0.0, 0.99)


def test_ema_half_life_and_rampup():
    assert math.isclose(ema_beta(10, None, 10**6, 32), 0.5 ** (32 / 10000))
    assert math.isclose(ema_beta(10, 0.05, 1000, 32), 0.5 ** (32 / 50))  # ramp-up: 5% of 1000 images
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.detach().clone()
    update_ema(a, b, 0.9)
    assert torch.allclose(a.weight, 0.9 * before + 0.1 * b.weight)


def test_ada_moves_p_by_the_sign_every_interval():
    pipe = AugmentPipe("bgc")
    ada = AdaController(pipe, AugmentConfig(target=0.6, interval=4, speed_kimg=1.0), batch=8, device="cpu")
    step_size = 8 * 4 / 1000
    for step in range(4):
        ada.observe(torch.tensor([[1.0], [1.0], [-1.0], [1.0]]))  # r_t = 0.5 < 0.6
        ada.update(step)
    assert float(pipe.p) == 0  # decreased, floored at 0
    for step in range(4, 12):
        ada.observe(torch.tensor([[1.0], [2.0], [3.0], [-1.0], [1.0]]))  # r_t = 0.6 + ... = 3/5 -> equal
        ada.observe(torch.tensor([[1.0]]))  # now 4/6 > 0.6
        ada.update(step)
        if step == 6:
            assert float(pipe.p) == 0  # only every 4th step
    assert math.isclose(float(pipe.p), 2 * step_size, rel_tol=1e-6)
    assert math.isclose(ada.last_rt, 4 / 6)


def test_resolve_derives_ada_defaults():
    cfg, preset = resolve("cpu128", 128)
    assert (cfg.batch, cfg.loss.r1_gamma, cfg.ema_kimg, cfg.mbstd_group) == (16, 0.2048, 5.0, 4)
    cfg, _ = resolve("cpu128", 128, batch=32)
    assert math.isclose(cfg.loss.r1_gamma, 0.0002 * 128**2 / 32) and cfg.ema_kimg == 10.0  # the "auto" rules
    cfg, preset = resolve("cpu128", 256)
    assert math.isclose(cfg.loss.r1_gamma, 0.0002 * 256**2 / 16) and preset.generator.img_resolution == 256
    cfg, _ = resolve("tiny", 32, batch=8, world_size=2, gamma=3.0, aug="none", target=0.7)
    assert cfg.batch_gpu == 4 and cfg.loss.r1_gamma == 3.0 and cfg.augment.mode == "none"
    assert cfg.augment.target == 0.7
    cfg, preset = resolve("tiny", 32, freezed=3)
    assert preset.discriminator.block.freeze_layers == 3
    with pytest.raises(ConfigError, match="divisible"):
        resolve("tiny", 32, batch=6, world_size=4)
    with pytest.raises(ConfigError, match="--aug"):
        resolve("tiny", 32, aug="magic")

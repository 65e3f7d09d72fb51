"""Neighbours: Gaussian offsets of the asked σ, W-shaped in W, reproducible by seed."""

import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.latent.keys import parse_keys, resolve_keys
from latentstudio.latent.neighbours import parse_picks, sample_neighbours
from latentstudio.latent.space import LatentSpace


@pytest.mark.parametrize("space_name", ["w", "w+", "z"])
def test_neighbour_offsets_have_the_asked_sigma(tiny_nets, space_name):
    G, _ = tiny_nets
    space = LatentSpace(space_name)
    centre = resolve_keys(parse_keys("7"), G, space)[0]
    latents = sample_neighbours(centre, space, count=100, sigma=0.5, seed=1)
    assert latents.shape == (100, *space.shape(G))
    offsets = latents - centre
    if space_name == "w":  # one w_dim vector per neighbour, shared by every layer: still a W latent
        assert torch.equal(offsets, offsets[:, :1].expand_as(offsets))
        offsets = offsets[:, 0]
    elif space_name == "w+":  # independent per layer
        assert not torch.allclose(offsets[:, 0], offsets[:, 1])
    n = offsets.numel()
    assert abs(offsets.std().item() - 0.5) < 4 * 0.5 / (2 * n) ** 0.5  # 4 standard errors of a sample σ
    assert abs(offsets.mean().item()) < 4 * 0.5 / n**0.5
    per_neighbour = offsets.reshape(100, -1).norm(dim=1) / offsets.reshape(100, -1).shape[1] ** 0.5
    assert per_neighbour.min() > 0.3 and per_neighbour.max() < 0.7  # every neighbour moved about σ


def test_same_seed_same_neighbours(tiny_nets):
    G, _ = tiny_nets
    space = LatentSpace("w")
    centre = resolve_keys(parse_keys("7"), G, space)[0]
    a = sample_neighbours(centre, space, count=10, sigma=0.5, seed=3)
    assert torch.equal(a, sample_neighbours(centre, space, count=10, sigma=0.5, seed=3))
    assert not torch.equal(a, sample_neighbours(centre, space, count=10, sigma=0.5, seed=4))
    assert torch.equal(sample_neighbours(centre, space, count=10, sigma=0.0, seed=3), centre.expand(10, -1, -1))


def test_picks():
    assert parse_picks("37", 100) == [37] and parse_picks("3, 37", 100) == [3, 37]
    for bad in ("100", "x", ""):
        with pytest.raises(UserError, match="--pick"):
            parse_picks(bad, 100)

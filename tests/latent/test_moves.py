"""The maths of moves: endpoints, frame counts, loop closure, σ of steps, unit variance, continuity."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.latent.keys import parse_keys, resolve_keys
from latentstudio.latent.moves import circle, ease, hold, interpolation, lerp, noise_loop, slerp, spacewalk
from latentstudio.latent.space import LatentSpace
from latentstudio.latent.timeline import Timeline


def keys(G, space, text="3,9,12"):
    return resolve_keys(parse_keys(text), G, space)


@pytest.mark.parametrize("mode", ["linear", "slerp"])
@pytest.mark.parametrize("easing", ["linear", "ease-in-out"])
def test_interpolation_endpoints_are_the_keys_and_frame_count_is_exact(tiny_nets, mode, easing):
    G, _ = tiny_nets
    space = LatentSpace("w")
    k = keys(G, space)
    segs = [interpolation(k[i], k[i + 1], 10, mode, easing, space.origin(G)) for i in range(2)]
    timeline = Timeline(space, segs, end_frame=True)
    assert timeline.num_frames == 10 * 2 + 1
    frames = timeline.latents(np.arange(timeline.num_frames))
    assert torch.equal(frames[0], k[0]) and torch.equal(frames[10], k[1]) and torch.equal(frames[20], k[2])
    assert not torch.allclose(frames[5], k[0]) and not torch.allclose(frames[5], k[1])


def test_linear_is_a_times_a_plus_b_times_b_and_slerp_keeps_the_sphere():
    a, b = torch.randn(64), torch.randn(64)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(lerp(a, b, t)[1], 0.75 * a + 0.25 * b)
    b = b / b.norm() * a.norm()  # equal norms: every slerp frame stays on that sphere, unlike lerp
    norms = slerp(a, b, torch.linspace(0, 1, 9)).norm(dim=1)
    assert torch.allclose(norms, a.norm().expand(9), rtol=1e-5)
    assert lerp(a, b, torch.tensor([0.5])).norm() < 0.99 * a.norm()
    assert torch.allclose(slerp(a, a.clone(), torch.tensor([0.3]))[0], a)  # parallel: falls back to lerp
    for name in ("linear", "ease-in", "ease-out", "ease-in-out", "smoothstep"):
        assert ease(name, torch.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("space_name", ["w", "w+", "z"])
def test_noise_loop_is_the_exhibitions_loop(tiny_nets, space_name):
    G, _ = tiny_nets
    space = LatentSpace(space_name)
    centre = keys(G, space, "5")[0]
    loop = noise_loop(centre, space, stops=7, frames=30, sigma=0.4, seed=1)
    assert loop.frames == 7 * 30
    frames = loop.latents(np.arange(loop.frames + 1))
    assert torch.equal(frames[0], centre)
    assert torch.equal(frames[loop.frames], loop.end()) and torch.equal(loop.end(), centre)  # closes on the centre
    stops = frames[0:loop.frames:30]
    assert torch.equal(stops, loop.stops)
    steps = (stops[1:] - stops[:-1])
    if space_name == "w":  # one 512-d (here w_dim) vector for all layers
        assert torch.equal(steps, steps[:, :1].expand_as(steps))
        steps = steps[:, 0]
    assert abs(steps.std().item() - 0.4) < 0.08 and abs(steps.mean().item()) < 0.08
    # Linear between stops: equal steps inside each segment, including the closing one back to the centre.
    diffs = frames[1:] - frames[:-1]
    assert torch.allclose(diffs[0], diffs[29], atol=1e-5) and torch.allclose(diffs[180], diffs[209], atol=1e-5)
    # The seam, without wrapping frame indices: the last frame is not the first (no repeated frame when the
    # video repeats), and the step from it to frame 0 is one more step of the closing segment (no jump).
    last = loop.latents(np.array([loop.frames - 1]))[0]
    assert not torch.allclose(last, centre, atol=1e-3)
    assert torch.allclose(centre - last, diffs[180], atol=1e-5)


def test_circle_closes_passes_through_keys_and_keeps_unit_variance(tiny_nets):
    G, _ = tiny_nets
    space = LatentSpace("z")
    z = torch.from_numpy(np.random.RandomState(0).randn(2, 4096).astype(np.float32))
    seg = circle(z[0], z[1], space, SimpleNamespace(z_dim=4096), frames=40)  # many dims: tight statistics
    frames = seg.latents(np.arange(40))
    assert torch.allclose(frames[0], z[0], atol=1e-6) and torch.allclose(frames[10], z[1], atol=1e-5)
    assert torch.allclose(seg.end(), frames[0]) and torch.allclose(seg.latents(np.array([40]))[0], frames[0])
    steps = (frames[1:] - frames[:-1]).norm(dim=1)
    seam = (frames[0] - frames[39]).norm()  # no wrapped index: the last frame, then the first again
    assert seam > 0.1 and abs(seam / steps.median() - 1) < 0.05  # one ordinary step: no repeat, no jump
    stds = frames.std(dim=1)
    assert torch.all((stds > 0.95) & (stds < 1.05))  # cos²+sin² = 1: every frame is a unit Gaussian
    lerp_mid = (z[0] + z[1]) / 2
    assert lerp_mid.std() < 0.8  # what a straight line would do instead
    w_space = LatentSpace("w")
    k = keys(G, w_space, "1")
    seg_w = circle(k[0], None, w_space, G, frames=12, seed=3)
    assert torch.allclose(seg_w.latents(np.array([0]))[0], k[0], atol=1e-5)


@pytest.mark.parametrize("loop", [True, False])
def test_spacewalk_is_continuous_anchored_and_loops(tiny_nets, loop):
    G, _ = tiny_nets
    space = LatentSpace("w")
    centre = keys(G, space, "4")[0]
    walk = spacewalk(centre, space, frames=400, radius=0.5, speed=0.02, loop=loop, seed=2)
    frames = walk.latents(np.arange(400))
    assert torch.allclose(frames[0], centre, atol=1e-6)  # anchored: starts on the key
    offsets = (frames - centre)[:, 0]  # W: the same offset on every layer
    assert torch.allclose(frames - centre, offsets[:, None].expand_as(frames - centre))
    rms = lambda d: d.pow(2).mean(-1).sqrt()  # per dimension
    steps = rms(offsets[1:] - offsets[:-1])
    assert steps.max() < 2.5 * steps.median() and steps.median() < 0.03  # small, even steps: no jumps
    seam = rms(offsets[0] - offsets[399])  # the last frame, then the first (no wrapped index)
    if loop:
        assert seam > 0.3 * steps.median() and seam < 2 * steps.median()  # no repeated frame, no jump
        assert torch.allclose(walk.end(), frames[0], atol=1e-6)  # the frame after the last is the first
    else:
        assert seam > 10 * steps.median()


@pytest.mark.parametrize("loop,anchored", [(False, True), (True, True), (False, False)])
def test_spacewalk_radius_is_the_sigma_of_the_offset(loop, anchored):
    space = LatentSpace("z")
    centre = torch.zeros(256)
    walk = spacewalk(centre, space, frames=2000, radius=0.7, speed=0.1, loop=loop, seed=3, anchored=anchored)
    offsets = walk.latents(np.arange(2000)) - centre
    assert (offsets[0].abs().max() == 0) == anchored
    # Anchored walks start at 0; 100 frames (10 noise units) on, either way round a loop, σ is the radius.
    away = offsets[100:1900] if anchored else offsets
    assert abs(away.std().item() / 0.7 - 1) < 0.06


def test_hold_and_bad_arguments(tiny_nets):
    G, _ = tiny_nets
    space = LatentSpace("w")
    k = keys(G, space, "1")[0]
    assert torch.equal(hold(k, 5).latents(np.arange(5)), k.expand(5, *k.shape))
    with pytest.raises(UserError, match="frames"):
        hold(k, 0)
    with pytest.raises(UserError, match="easing"):
        interpolation(k, k, 10, easing="bouncy")
    with pytest.raises(UserError, match="sigma"):
        noise_loop(k, space, sigma=-1)

"""Latent files: NVIDIA's projected_w.npz layout, keys."""

import numpy as np
import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.latent.io import load_latents, load_ws, save_latents
from latentstudio.latent.keys import KeySpec, parse_key, parse_keys, resolve_keys, resolve_one
from latentstudio.latent.seeds import z_from_seeds
from latentstudio.latent.space import LatentSpace


def test_round_trip_uses_nvidia_layout(tmp_path):
    ws = torch.randn(1, 8, 32)
    path = save_latents(tmp_path / "projected_w.npz", ws[0])  # [num_ws, w_dim] is promoted to [1, ...]
    with np.load(path) as data:
        assert list(data.keys()) == ["w"]
        assert data["w"].shape == (1, 8, 32) and data["w"].dtype == np.float32
        assert np.array_equal(data["w"], ws.numpy())
    assert torch.equal(load_ws(path, num_ws=8, w_dim=32), ws)
    assert [p.name for p in tmp_path.iterdir()] == ["projected_w.npz"]  # no temporary file left behind


def test_reads_what_nvidia_projector_writes(tmp_path):
    projected_w = torch.randn(8, 32)  # their projector: np.savez(path, w=projected_w.unsqueeze(0).cpu().numpy())
    np.savez(tmp_path / "projected_w.npz", w=projected_w.unsqueeze(0).cpu().numpy())
    ws = load_ws(tmp_path / "projected_w.npz", num_ws=8, w_dim=32)
    assert ws.shape == (1, 8, 32) and torch.equal(ws[0], projected_w)


def test_z_is_kept_and_other_layouts_are_read(tmp_path):
    ws, z = torch.randn(3, 8, 32), torch.randn(3, 16)
    data = load_latents(save_latents(tmp_path / "n.npz", ws, z=z), num_ws=8, w_dim=32, z_dim=16)
    assert len(data) == 3 and torch.equal(data.w, ws) and torch.equal(data.z, z)
    np.save(tmp_path / "dlatents.npy", ws[:1].numpy())  # the TF projector's bare array
    assert torch.equal(load_ws(tmp_path / "dlatents.npy", 8, 32), ws[:1])
    w_only = np.random.RandomState(0).randn(2, 32).astype(np.float32)  # W latents, broadcast to every layer
    np.savez(tmp_path / "w_only.npz", w=w_only)
    got = load_ws(tmp_path / "w_only.npz", num_ws=8, w_dim=32)
    assert got.shape == (2, 8, 32) and torch.equal(got[:, 5], torch.from_numpy(w_only))


@pytest.mark.parametrize("array,needle", [
    (np.zeros((1, 8, 16), np.float32), "w_dim 16"),
    (np.zeros((1, 6, 32), np.float32), "6 ws"),
    (np.full((1, 8, 32), np.nan, np.float32), "finite"),
    (np.zeros((2, 2, 8, 32), np.float32), "shape"),
])
def test_bad_files_name_the_problem(tmp_path, array, needle):
    np.savez(tmp_path / "bad.npz", w=array)
    with pytest.raises(UserError, match=needle):
        load_ws(tmp_path / "bad.npz", num_ws=8, w_dim=32)


def test_pickles_and_garbage_are_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", w=np.array([{"a": 1}], dtype=object))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name in ("obj.npz", "junk.npz", "missing.npz"):
        with pytest.raises(UserError, match=name):
            load_ws(tmp_path / name)


def test_parse_keys(tmp_path):
    assert parse_keys("3,9") == [KeySpec(seed=3), KeySpec(seed=9)]
    assert parse_keys("2-4") == [KeySpec(seed=2), KeySpec(seed=3), KeySpec(seed=4)]
    assert parse_key("a/b.npz#2", base_dir=tmp_path) == [KeySpec(path=str(tmp_path / "a/b.npz"), index=2)]
    assert str(parse_key("x.npz#1")[0]) == "x.npz#1" and str(parse_key(7)[0]) == "7"
    with pytest.raises(UserError, match="not a seed"):
        parse_keys("3,picture.png")


def test_seed_keys_mean_nvidia_seeds_and_file_keys_resolve(tiny_nets, tmp_path):
    G, _ = tiny_nets
    space = LatentSpace("w", truncation_psi=0.7)
    got = resolve_keys(parse_keys("3,9"), G, space)
    want = G.mapping(z_from_seeds([3, 9], G.z_dim), None, truncation_psi=0.7)
    assert torch.allclose(got, want, atol=1e-5)  # batched matmuls round differently
    assert torch.equal(resolve_keys(parse_keys("3"), G, LatentSpace("z"))[0], z_from_seeds([3], G.z_dim)[0])
    save_latents(tmp_path / "two.npz", got)
    assert torch.equal(resolve_one(parse_key(str(tmp_path / "two.npz#1"))[0], G, space), got[1])
    assert resolve_keys(parse_keys(str(tmp_path / "two.npz")), G, space).shape == (2, G.num_ws, G.w_dim)
    with pytest.raises(UserError, match="#0"):
        resolve_one(parse_key(str(tmp_path / "two.npz"))[0], G, space)
    with pytest.raises(UserError, match="--space w"):
        resolve_keys(parse_keys(str(tmp_path / "two.npz")), G, LatentSpace("z"))

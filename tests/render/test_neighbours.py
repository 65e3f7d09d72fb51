"""Neighbour folders: every image matches its latent file, the sheet is numbered, picks become keys."""

import numpy as np
import torch
from PIL import Image

from latentstudio.latent.io import load_latents, load_ws
from latentstudio.latent.keys import parse_keys, resolve_keys
from latentstudio.latent.neighbours import sample_neighbours
from latentstudio.latent.space import LatentSpace
from latentstudio.render.images import to_uint8
from latentstudio.render.neighbours import pick_neighbours, write_neighbours


def test_images_latents_sheet_and_picks(tiny_nets, tmp_path):
    G, _ = tiny_nets
    space = LatentSpace("z")
    centre = resolve_keys(parse_keys("7"), G, space)[0]
    latents = sample_neighbours(centre, space, count=9, sigma=0.5, seed=0)
    sheet = write_neighbours(G, space, centre, latents, tmp_path, batch=5, thumb=32, cols=5, progress=False)
    assert sorted(p.name for p in tmp_path.glob("0*.npz")) == [f"{i:03d}.npz" for i in range(9)]
    one = load_latents(tmp_path / "007.npz", G.num_ws, G.w_dim, G.z_dim)
    assert one.w.shape == (1, G.num_ws, G.w_dim) and torch.equal(one.z[0], latents[7])  # NVIDIA layout + z
    with torch.no_grad():
        image = to_uint8(G.synthesis(one.w, noise_mode="const"))[0]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "007.png")), image)
    everything = load_ws(tmp_path / "neighbours.npz", G.num_ws, G.w_dim)
    assert everything.shape == (9, G.num_ws, G.w_dim) and torch.equal(everything[7], one.w[0])
    # 10 cells (the key + 9) in rows of 5: 2 rows of 32 px pictures with a label strip under each
    assert Image.open(sheet).size == (5 * 34 + 2, 2 * (32 + 2 + 14) + 2)
    pick = pick_neighbours(tmp_path, [7, 2])
    picked = load_latents(pick, G.num_ws, G.w_dim, G.z_dim)
    assert torch.equal(picked.w[0], one.w[0]) and torch.equal(picked.z[1], latents[2])

"""Writing neighbours to a folder: every image, every latent and a numbered contact sheet.

    out/
      sheet.png            the key (first, labelled "key") and neighbours 0..N-1, numbered as the files
      key.png, key.npz     the centre
      000.png, 000.npz ... one image and one latent per neighbour (NVIDIA's layout: `w` [1, num_ws, w_dim],
                           plus `z` [1, z_dim] for Z-space neighbours)
      neighbours.npz       all of them in one file, `w` [N, num_ws, w_dim] (a key as `neighbours.npz#37`)

Any of the .npz files is a key for `walk --keys` / timelines, exactly like NVIDIA's `projected_w.npz`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..latent.io import save_latents
from ..latent.space import LatentSpace
from ..utils.progress import bar
from .images import make_grid, save_png, tensor_to_pils


def neighbour_name(i: int, count: int) -> str:
    return f"{i:0{max(3, len(str(count - 1)))}d}"


@torch.no_grad()
def write_neighbours(G, space: LatentSpace, centre: torch.Tensor, latents: torch.Tensor, out_dir: str | Path,
                     batch: int = 8, noise_mode: str = "const", thumb: int = 128, cols: int = 10,
                     progress: bool = True) -> Path:
    """Render the centre and its neighbours (latents [N, *shape] of `space`) into out_dir; returns sheet.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    everything = torch.cat([centre[None].float(), latents.float()])
    names = ["key"] + [neighbour_name(i, len(latents)) for i in range(len(latents))]
    all_ws, thumbs = [], []
    progress_bar = bar(len(everything), desc="neighbours", unit="img") if progress else None
    for i in range(0, len(everything), batch):
        chunk = everything[i:i + batch]
        ws = space.to_ws(G, chunk)
        images = G.synthesis(ws, noise_mode=noise_mode)
        for j, (img, name) in enumerate(zip(tensor_to_pils(images), names[i:i + batch], strict=True)):
            save_png(img, out / f"{name}.png")
            save_latents(out / f"{name}.npz", ws[j:j + 1], z=chunk[j:j + 1] if space.is_z else None)
            thumbs.append(img if img.width <= thumb else img.resize((thumb, thumb * img.height // img.width)))
        all_ws.append(ws.cpu())
        if progress_bar is not None:
            progress_bar.update(len(chunk))
    if progress_bar is not None:
        progress_bar.close()
    ws_all = torch.cat(all_ws)
    save_latents(out / "neighbours.npz", ws_all[1:], z=latents if space.is_z else None)
    labels = ["key"] + [str(i) for i in range(len(latents))]
    return save_png(make_grid(thumbs, labels, cols=min(cols, len(thumbs))), out / "sheet.png")


def pick_neighbours(out_dir: str | Path, picks: list[int], path: str | Path | None = None) -> Path:
    """Copy the picked neighbours (rows of neighbours.npz, in the order given) into one key file (pick.npz)."""
    out = Path(out_dir)
    with np.load(out / "neighbours.npz", allow_pickle=False) as data:
        w = data["w"][picks]
        z = data["z"][picks] if "z" in data else None
    return save_latents(path or out / "pick.npz", w, z=z)

"""The one place where the server calls other areas of latentstudio (walks, projection, video).

Each function is a thin boundary: while the owner's API has not landed on main it holds the smallest stand-in
that works (marked TODO). Replace the bodies with calls to the owners' functions as they land; the server
code only ever calls these functions.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Linear interpolation a*(1-t) + b*t of two ws (the walks area's interpolation, one frame).
    TODO(walks): use latentstudio.latent's interpolation once it lands."""
    return a + (b - a) * float(t)


def neighbours(ws: torch.Tensor, count: int, strength: float, seed: int) -> torch.Tensor:
    """`count` neighbours of ws [num_ws, w_dim]: ws plus Gaussian noise of std `strength` in W (the same noise on
    every row, so a W-space latent stays one). Deterministic in `seed`. Returns [count, num_ws, w_dim].
    TODO(walks): use latentstudio.latent's neighbours once it lands."""
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.randn([count, 1, ws.shape[-1]], generator=gen) * float(strength)
    return ws.unsqueeze(0).cpu() + noise


def noise_loop_stops(ws: torch.Tensor, stops: int, strength: float, seed: int) -> torch.Tensor:
    """Stops of a closed noise loop around ws: stop 0 = ws, stop k = stop k-1 + noise (the exhibition's recipe).
    Frames interpolate stop k -> k+1 and the last stop back to stop 0. Returns [stops, num_ws, w_dim].
    TODO(walks): use latentstudio.latent's noise loop once it lands."""
    gen = torch.Generator().manual_seed(int(seed))
    steps = torch.randn([stops - 1, 1, ws.shape[-1]], generator=gen) * float(strength)
    out = [ws.cpu()]
    for step in steps:
        out.append(out[-1] + step)
    return torch.stack(out)


def project_image(G, image: torch.Tensor, budget_s: float, device, seed: int = 0) -> torch.Tensor:
    """Project one image [1, C, H, W] in [-1, 1] (already at the model's resolution) to ws [num_ws, w_dim] within
    about `budget_s` seconds.
    TODO(project): call latentstudio.invert's live_project(G, encoder, image, budget_s) once it lands; this
    stand-in picks the closest of a few seeds in pixel space and refines one W latent with Adam on pixel MSE."""
    start = time.monotonic()
    target = image.to(device)
    with torch.no_grad():
        z = torch.from_numpy(np.random.RandomState(seed).randn(16, G.z_dim)).float().to(device)
        cands = G.mapping(z, None, truncation_psi=0.7)[:, :1]
        err = [(G.synthesis(c.unsqueeze(0).repeat(1, G.num_ws, 1), noise_mode="const") - target).square().mean()
               for c in cands]
        w = cands[int(torch.stack(err).argmin())].clone().unsqueeze(0)
    w.requires_grad_(True)
    opt = torch.optim.Adam([w], lr=0.05)
    while time.monotonic() - start < budget_s:
        loss = (G.synthesis(w.repeat(1, G.num_ws, 1), noise_mode="const") - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return w.detach().repeat(1, G.num_ws, 1)[0].cpu()


def save_latent(path: Path, ws: torch.Tensor) -> None:
    """Write ws [num_ws, w_dim] as NVIDIA's projected_w.npz (key 'w', shape [1, num_ws, w_dim]).
    TODO(walks): use latentstudio.latent's npz I/O once it lands."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, w=ws.unsqueeze(0).cpu().numpy().astype(np.float32))
    tmp.replace(path)


def load_latent(path: Path) -> torch.Tensor:
    """Read a projected_w.npz written by save_latent (or by NVIDIA's projector) -> ws [num_ws, w_dim].
    TODO(walks): use latentstudio.latent's npz I/O once it lands."""
    with np.load(path) as data:
        return torch.from_numpy(np.asarray(data["w"], dtype=np.float32)).reshape(-1, data["w"].shape[-1])


def open_video_writer(path: Path, fps: int, size: int):
    """A writer with .write(frame uint8 [H, W, 3]) and .close() that makes an H.264 MP4.
    TODO(walks): use latentstudio.render's video writer once it lands."""
    from ..errors import require

    av = require("av", "video", "Rendering videos")
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width = stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "20"}

    class _Writer:
        def write(self, frame: np.ndarray) -> None:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)

        def close(self) -> None:
            for packet in stream.encode():
                container.mux(packet)
            container.close()

    return _Writer()


def open_serving_model(spec: str | None, device):
    """The model to serve: `spec` through io.registry.open_model; without a spec the built-in default model.
    TODO(train): while the built-in default model is not installed, an untrained cpu128 generator (seed 0) is
    served instead, with a warning, so the installation still runs end to end."""
    import logging

    from ..errors import ModelFormatError
    from ..io.model_dir import LoadedModel, ModelConfig
    from ..io.registry import open_model
    from ..models import Generator, get_preset

    try:
        model = open_model(spec, device=device)
    except ModelFormatError:
        if spec not in (None, "", "default"):
            raise
        logging.getLogger("latentstudio.server").warning(
            "the built-in default model is not installed; serving an untrained cpu128 generator")
        torch.manual_seed(0)
        G = Generator(get_preset("cpu128").generator).to(device).eval()
        model = LoadedModel(path=Path("random-init-cpu128"), config=ModelConfig(generator=G.config),
                            provenance={"source": "random-init", "preset": "cpu128", "seed": 0}, G=G)
    model.G.requires_grad_(False)  # the server never trains; projection optimises latents only
    return model

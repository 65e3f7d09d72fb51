"""The model side of the server: one loaded generator, a single model thread, batched rendering and the
resolution of latent "keys" (seeds, drawings, raw latents, neighbours) to ws.

Torch work runs on `model_executor` (one thread); the event loop only awaits it. Generation requests go
through a MicroBatcher so concurrent requests share one forward pass; on a CPU whose cores the model thread
does not fill by itself (2 cores: one torch thread, see torch_threads), batches run on a small pool of such
threads instead, so that under load two batches run at once, one per core (see synthesis_workers).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import io
import weakref
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ..device import cpu_cores
from ..errors import UserError
from ..render.images import to_uint8
from . import adapters
from .batcher import MicroBatcher


@dataclasses.dataclass
class GenItem:
    """One image to render: z (mapped with truncation psi), a seed (NVIDIA's z, mapped with psi and cached) or
    ready ws [num_ws, w_dim]."""

    z: torch.Tensor | None = None
    ws: torch.Tensor | None = None
    seed: int | None = None
    psi: float = 1.0
    fmt: str = "jpeg"  # jpeg | png | raw (uint8 array)
    quality: int = 90


def encode_image(array: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    img = Image.fromarray(array[..., 0], "L") if array.shape[-1] == 1 else Image.fromarray(array, "RGB")
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG")
    else:
        img.save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def data_url(payload: bytes, fmt: str = "jpeg") -> str:
    return f"data:image/{fmt};base64," + base64.b64encode(payload).decode("ascii")


def adapt_z(values: Sequence[float], z_dim: int) -> np.ndarray:
    """The RunwayML rule for a z of another length: keep the first z_dim values and pad missing ones with 0.
    The mapping network normalises z to unit second moment first, so a padded vector stays a valid input."""
    z = np.zeros(z_dim, dtype=np.float32)
    n = min(len(values), z_dim)
    z[:n] = np.asarray(values[:n], dtype=np.float32)
    return z


def torch_threads(requested: int = 0) -> int:
    """Threads for the model thread's torch ops. 0 = one less than the cores this process may use (at least 1):
    the event loop needs a core of its own to parse requests and send frames while a batch runs, and an
    OpenMP team that has to share its cores with it stalls at every barrier."""
    if requested > 0:
        return int(requested)
    return max(1, cpu_cores() - 1)


def synthesis_workers(requested: int, device: torch.device, threads: int) -> int:
    """Batches that may run at once. 0 = as many as the cores hold teams of `threads` torch threads, on a CPU;
    1 on a GPU (it runs one batch at a time anyway). On 2 cores the model thread has one torch thread, so
    that the event loop keeps a core while a lone request is rendered; under load a second batch on the
    second core gives 1.4-1.6x the images/s at 32 clients (one-thread teams have no barrier to stall when
    they share a core with the event loop; docs/studio.md)."""
    if requested > 0:
        return int(requested)
    if device.type != "cpu":
        return 1
    return max(1, cpu_cores() // max(1, threads))


class Engine:
    def __init__(self, model, device, max_batch: int = 16, max_wait_ms: float = 4.0, batching: bool = True,
                 latent_lookup: Callable[[str], torch.Tensor] | None = None, threads: int = 0, workers: int = 0):
        self.model = model
        self.device = device
        self.threads = torch_threads(threads)
        self.workers = synthesis_workers(workers, device, self.threads) if batching else 1
        self.model_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        # one worker: batches share the model thread with everything else; more: a pool of their own, each
        # thread with the model thread's torch thread count (OpenMP's count is per calling thread)
        self.synth_executor = self.model_executor if self.workers == 1 else concurrent.futures.ThreadPoolExecutor(
            self.workers, thread_name_prefix="synth", initializer=torch.set_num_threads, initargs=(self.threads,))
        # JPEG/PNG encoding of batched requests runs here, next to the model thread, so that the model thread
        # goes on to the next batch while the last one is encoded (PIL releases the GIL while it encodes)
        self.encode_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="encode")
        self.batcher = MicroBatcher(self.synthesise, self.synth_executor, max_batch, max_wait_ms, batching,
                                    concurrency=self.workers)
        self.latent_lookup = latent_lookup
        # mapped seeds per generator: a batch that started before a model switch finishes with the old
        # generator on its worker, and must not file the old model's ws under the new one
        self._seed_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # counts model switches (the wall and walk streams rebuild their latents when it moves on) and names
        # the loaded model in image URLs and ETags: new on every load, so no cache mixes two models' images
        self.model_version = 0
        self.model_tag = _new_tag()

    # ---- facts about the model -------------------------------------------------------------------------
    @property
    def G(self):
        return self.model.G

    def describe(self) -> dict:
        G = self.G
        return {"path": str(self.model.path), "z_dim": G.z_dim, "w_dim": G.w_dim, "num_ws": G.num_ws,
                "c_dim": G.c_dim, "resolution": G.img_resolution, "channels": G.img_channels,
                "provenance": self.model.provenance, "tag": self.model_tag}

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        # set on the model thread itself: OpenMP's thread count is per calling thread
        self.model_executor.submit(torch.set_num_threads, self.threads).result()
        self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()
        self.synth_executor.shutdown(wait=True, cancel_futures=True)
        self.model_executor.shutdown(wait=True, cancel_futures=True)
        self.encode_executor.shutdown(wait=True, cancel_futures=True)

    async def call(self, fn, *args):
        """Run model work (anything touching G) on the model thread."""
        return await asyncio.get_running_loop().run_in_executor(self.model_executor, fn, *args)

    def swap_model(self, model) -> None:
        """Model thread only: replace the generator. A batch running on a synthesis worker finishes with the
        old one. Latents made for the old model may not fit the new one (another architecture): items that do
        not fit fail on their own (synthesise)."""
        self.model = model
        self.model_tag = _new_tag()
        self.model_version += 1

    # ---- rendering -------------------------------------------------------------------------------------
    async def render(self, item: GenItem):
        """The encoded image of one item (batched with concurrent requests), or the uint8 array for fmt 'raw'."""
        image = await self.batcher.submit(item)
        if item.fmt == "raw":
            return image
        return await asyncio.get_running_loop().run_in_executor(self.encode_executor, encode_image, image,
                                                                item.fmt, item.quality)

    async def render_many(self, items: Sequence[GenItem]) -> list:
        """Several images in one model-thread hop (one forward pass), outside the batcher: for callers that
        already have a batch (wall frames rendered ahead). An item that does not fit the model is its UserError."""
        return await self.call(self.run_batch, list(items))

    @torch.no_grad()
    def render_frames(self, tl, start: int, stop: int) -> np.ndarray:
        """Model thread: uint8 RGB frames [B, H, W, 3] of timeline frames start .. stop-1 (render jobs)."""
        ws = tl.latents(np.arange(start, stop)).to(self.device, torch.float32)
        frames = to_uint8(self.G.synthesis(ws, noise_mode="const"))
        return frames if frames.shape[-1] == 3 else frames.repeat(3, axis=-1)

    @torch.no_grad()
    def run_batch(self, items: Sequence[GenItem]) -> list:
        """Model thread: synthesise the items in one pass and encode them (uint8 arrays for fmt 'raw'); an item
        that does not fit the model is its UserError in the list (see synthesise)."""
        return [img if isinstance(img, Exception) or item.fmt == "raw" else encode_image(img, item.fmt, item.quality)
                for img, item in zip(self.synthesise(items), items, strict=True)]

    @torch.no_grad()
    def synthesise(self, items: Sequence[GenItem]) -> list:
        """Model thread: map the z items (grouped by truncation), synthesise everything in one pass; one uint8
        image [H, W, C] per item. An item whose ws or z does not fit the served model (made for the model before
        a switch) is a UserError in its place: it fails alone, never the batch of other clients' requests."""
        G = self.G
        ws: list = [None] * len(items)
        out: list = [None] * len(items)
        by_psi: dict[float, list[int]] = {}
        for i, item in enumerate(items):
            try:
                if item.ws is not None:
                    ws[i] = self._check_shape(item.ws, "latent", G).to(self.device, torch.float32)
                elif item.seed is not None:  # mapped here, in the same model-thread hop as the synthesis
                    ws[i] = self.seed_ws(item.seed, item.psi, G).to(self.device)
                else:
                    self._check_z(item.z, G)
                    by_psi.setdefault(float(item.psi), []).append(i)
            except UserError as exc:
                out[i] = exc
        for psi, idx in by_psi.items():
            z = torch.stack([items[i].z for i in idx]).to(self.device, torch.float32)
            mapped = G.mapping(z, self._labels(len(idx), G), truncation_psi=psi)
            for j, i in enumerate(idx):
                ws[i] = mapped[j]
        good = [i for i in range(len(items)) if out[i] is None]
        if good:
            images = to_uint8(G.synthesis(torch.stack([ws[i] for i in good]), noise_mode="const"))
            for j, i in enumerate(good):
                out[i] = images[j]
        return out

    def _labels(self, n: int, G):
        if G.c_dim == 0:
            return None
        c = torch.zeros([n, G.c_dim], device=self.device)
        c[:, 0] = 1  # conditional models: class 0 unless a key says otherwise
        return c

    # ---- keys -> ws (model thread) ---------------------------------------------------------------------
    def seed_ws(self, seed: int, psi: float, G=None) -> torch.Tensor:
        """ws [num_ws, w_dim] of NVIDIA's z for `seed` under generator G (default: the served one), cached."""
        G = self.G if G is None else G
        cache = self._seed_cache.setdefault(G, {})
        key = (int(seed), round(float(psi), 4))
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()
            z = adapters.seed_z(seed, G.z_dim).to(self.device)
            with torch.no_grad():
                cache[key] = G.mapping(z, self._labels(1, G), truncation_psi=psi)[0].cpu()
        return cache[key]

    def resolve(self, key: dict, default_psi: float = 0.7, depth: int = 0) -> torch.Tensor:
        """A key (see schemas.Key) -> ws [num_ws, w_dim] on the CPU. Raises UserError for unknown drawings or
        latents of the wrong shape."""
        G = self.G
        if depth > 8:
            raise UserError("key: neighbours are nested more than 8 levels deep")
        if key.get("seed") is not None:
            psi = key.get("truncation")
            return self.seed_ws(key["seed"], default_psi if psi is None else psi)
        if key.get("drawing") is not None:
            if self.latent_lookup is None:
                raise UserError("key.drawing: this server has no drawing store")
            return self._check_shape(self.latent_lookup(key["drawing"]), f"drawing {key['drawing']}")
        if key.get("w") is not None:
            w = torch.tensor(key["w"], dtype=torch.float32)
            if w.ndim == 1:
                w = w.unsqueeze(0).repeat(G.num_ws, 1)
            return self._check_shape(w, "key.w")
        if key.get("of") is not None:
            parent = self.resolve(key["of"], default_psi, depth + 1)
            # .get with defaults, never `or`: strength 0 (the key itself) and index 0 are real values
            index = int(key.get("index", 0))
            found = adapters.neighbours(parent, index + 1, float(key.get("strength", 0.5)),
                                        int(key.get("noise_seed", 0)))
            return found[index]
        raise UserError("key: give one of seed, drawing, w or of (a neighbour)")

    def _check_z(self, z: torch.Tensor, G) -> None:
        if tuple(z.shape) != (G.z_dim,):
            raise UserError(f"z has shape {list(z.shape)}, the served model needs [{G.z_dim}] (was the model "
                            "switched?)")

    def _check_shape(self, ws: torch.Tensor, where: str, G=None) -> torch.Tensor:
        G = self.G if G is None else G
        if tuple(ws.shape) != (G.num_ws, G.w_dim):
            raise UserError(f"{where}: latent has shape {list(ws.shape)}, this model needs "
                            f"[{G.num_ws}, {G.w_dim}] (or a flat list of {G.w_dim})")
        return ws


def _new_tag() -> str:
    import secrets

    return secrets.token_hex(4)

"""Our generation API: images for seeds or keys, neighbours, interpolation frames, model facts."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Request, Response

from ... import __version__
from .. import adapters
from ..engine import GenItem, data_url
from ..safety import client_id
from ..schemas import MAX_TRUNCATION, GenerateBody, InterpolateBody, NeighboursBody
from . import studio

router = APIRouter(prefix="/api", tags=["generate"])


def _limit(request: Request, cost: float = 1.0) -> None:
    s = studio(request)
    s.limiter.check(client_id(request), "generate", s.config.generate_rate, s.config.generate_burst, cost)


async def _render_all(s, ws_list, fmt: str = "jpeg") -> list[str]:
    import asyncio

    items = [GenItem(ws=ws, fmt=fmt, quality=s.config.jpeg_quality) for ws in ws_list]
    return [data_url(p, fmt) for p in await asyncio.gather(*(s.engine.render(i) for i in items))]


@router.get("/model", summary="the served model and server settings")
async def model_info(request: Request) -> dict:
    s = studio(request)
    return {"model": s.engine.describe(), "version": __version__, "truncation": s.config.truncation,
            "wall_fps": s.config.wall_fps, "batching": s.config.batching, "max_batch": s.config.max_batch,
            "upload_max_bytes": s.config.upload_max_bytes, "upload_max_pixels": s.config.upload_max_pixels}


@router.get("/health", summary="liveness: answers at once while the server is up (never waits for the model)")
async def health(request: Request) -> dict:
    s = studio(request)
    return {"ok": True, "model": s.engine.describe()["resolution"], "server_time": time.time()}


@router.get("/stats", summary="batching and wall-frame statistics")
async def stats(request: Request) -> dict:
    s = studio(request)
    b, wall = s.engine.batcher, s.wall_frames
    return {"batches": b.batches, "items": b.items, "mean_batch": b.items / b.batches if b.batches else 0.0,
            "torch_threads": s.engine.threads, "workers": s.engine.workers, "wall_frames_rendered": wall.rendered,
            "wall_frames_sent": wall.served}


@router.get("/image", summary="one JPEG for a seed (for <img src>; concurrent requests are batched)",
            response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, 304: {"description": "unchanged (If-None-Match)"}})
async def image(request: Request, seed: int = Query(..., ge=0, lt=2**32),
                truncation: float | None = Query(None, ge=0, le=MAX_TRUNCATION),
                model: str | None = Query(None, max_length=64, description="the served model's tag (GET "
                                          "/api/model): an image URL with it may be cached for an hour")) -> Response:
    s = studio(request)
    _limit(request)
    psi = s.config.truncation if truncation is None else truncation

    def headers() -> dict:
        # The ETag names the model: after a switch (or a restart) a cached image is never taken for the new
        # one's. A URL that names the served model may be cached; any other is checked each time (a cheap 304).
        tag = s.engine.model_tag
        return {"ETag": f'"{tag}-{seed}-{psi:.4f}"', "Cache-Control": "max-age=3600" if model == tag else "no-cache"}

    before = headers()
    if before["ETag"] in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=before)
    jpeg = await s.engine.render(GenItem(seed=seed, psi=psi, quality=s.config.jpeg_quality))
    return Response(jpeg, media_type="image/jpeg", headers=headers())  # the model it was rendered with


@router.post("/generate", summary="images for seeds or keys (data URLs)")
async def generate(body: GenerateBody, request: Request) -> dict:
    s = studio(request)
    keys = [{"seed": x} for x in body.seeds] if body.seeds is not None else \
        [k.model_dump(exclude_none=True) for k in body.keys]
    _limit(request, len(keys))
    psi = s.config.truncation if body.truncation is None else body.truncation
    ws_list = await s.engine.call(lambda: [s.engine.resolve(k, psi) for k in keys])
    return {"images": await _render_all(s, ws_list, body.format), "keys": [pin_truncation(k, psi) for k in keys]}


@router.post("/neighbours", summary="numbered neighbours of a key (each comes back as a key you can pick)")
async def neighbours(body: NeighboursBody, request: Request) -> dict:
    s = studio(request)
    _limit(request, body.count)
    # the parent's seeds keep the truncation they were resolved with: a picked neighbour is the same image
    # whatever truncation it is rendered with later (a walk, /api/generate with another default)
    parent = pin_truncation(body.key.model_dump(exclude_none=True), s.config.truncation)

    def work():
        base = s.engine.resolve(parent, s.config.truncation)
        return adapters.neighbours(base, body.count, body.strength, body.seed)

    found = await s.engine.call(work)
    keys = [{"of": parent, "index": i, "strength": body.strength, "noise_seed": body.seed} for i in range(body.count)]
    return {"images": await _render_all(s, list(found)), "keys": keys}


def pin_truncation(key: dict, psi: float) -> dict:
    """A copy of `key` whose seeds (itself, or the parent of a neighbour, any depth) name the truncation they
    are resolved with when they give none, so that the key reproduces its image under any default."""
    if key.get("seed") is not None and key.get("truncation") is None:
        return {**key, "truncation": float(psi)}
    if key.get("of") is not None:
        return {**key, "of": pin_truncation(key["of"], psi)}
    return key


@router.post("/interpolate", summary="interpolation frames from key a to key b")
async def interpolate(body: InterpolateBody, request: Request) -> dict:
    s = studio(request)
    _limit(request, body.frames)
    a, b = body.a.model_dump(exclude_none=True), body.b.model_dump(exclude_none=True)

    def work():
        wa, wb = s.engine.resolve(a, s.config.truncation), s.engine.resolve(b, s.config.truncation)
        return list(adapters.interpolate(wa, wb, body.frames))

    return {"images": await _render_all(s, await s.engine.call(work))}

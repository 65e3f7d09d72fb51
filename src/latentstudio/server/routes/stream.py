"""Live frames: the Wall (server-clock walk through the gallery) and walk previews, as WebSocket binary JPEG
messages or as a multipart/x-mixed-replace (MJPEG) HTTP stream. Frames are paced by the clock: when rendering
falls behind, frames are skipped rather than queued, so a stream never drifts from real time. Wall frames are
rendered ahead in batches and shared between the streams (wall.WallFrames). A client holds at most
`max_streams_per_client` streams at once."""

from __future__ import annotations

import asyncio
import json
import time
from typing import NamedTuple

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from ...errors import UserError
from ..engine import GenItem
from ..jobs import walk_timeline
from ..safety import client_id
from ..schemas import WalkSpec

router = APIRouter(prefix="/api", tags=["stream"])
POLICY_VIOLATION = 1008  # WebSocket close code for "refused by the server's rules"


@router.get("/clock", summary="server time (screens align their walks to it)")
async def clock() -> dict:
    return {"server_time": time.time()}


@router.get("/wall", summary="the wall's current walk: members, cycle length, fps, start time")
async def wall_info(request: Request) -> dict:
    wall = request.app.state.studio.wall
    await wall.refresh()
    return wall.describe()


async def wall_frames(studio, screen: int, of: int, fps: int):
    """Yield (frame position, JPEG) for one screen at `fps`, following the server clock."""
    wall, frames = studio.wall, studio.wall_frames
    stride = max(1, round(wall.fps / fps))  # a slower stream shows every stride-th frame of the walk
    period = 1.0 / fps
    next_t = time.time()
    while True:
        await wall.refresh()
        yield await frames.get(time.time(), screen, of, stride)
        next_t += period
        delay = next_t - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_t = time.time()  # behind: drop the missed ticks


async def _refuse(websocket: WebSocket, detail: str) -> None:
    await _send_error(websocket, detail)
    await websocket.close(code=POLICY_VIOLATION, reason=detail[:120])


def _ws_client(websocket: WebSocket) -> str:
    return websocket.client.host if websocket.client else "unknown"


@router.websocket("/wall/ws")
async def wall_ws(websocket: WebSocket, screen: int = Query(0, ge=0, le=63), of: int = Query(1, ge=1, le=64),
                  fps: int | None = Query(None, ge=1, le=60)):
    studio = websocket.app.state.studio
    client = _ws_client(websocket)
    await websocket.accept()
    if studio.streams.full(client):
        return await _refuse(websocket, studio.streams.reason(client))
    fps = fps or studio.config.wall_fps
    await websocket.send_text(json.dumps({"type": "hello", "server_time": time.time(), "fps": fps,
                                          "screen": screen, "of": of}))
    sent_version = -1
    with studio.streams.hold(client):
        try:
            async for _, jpeg in wall_frames(studio, screen, of, fps):
                if studio.wall.version != sent_version:  # tell the page who is on the wall now
                    sent_version = studio.wall.version
                    await websocket.send_text(json.dumps({"type": "wall", **studio.wall.describe()}))
                await websocket.send_bytes(jpeg)
        except (WebSocketDisconnect, RuntimeError):
            return


@router.get("/wall.mjpeg", summary="the wall as an MJPEG stream (for players and <img>); bounded by `seconds`")
async def wall_mjpeg(request: Request, screen: int = Query(0, ge=0, le=63), of: int = Query(1, ge=1, le=64),
                     fps: int | None = Query(None, ge=1, le=60), seconds: float = Query(3600, gt=0, le=86400)):
    studio = request.app.state.studio
    client = client_id(request)
    if studio.streams.full(client):
        raise HTTPException(429, studio.streams.reason(client), headers={"Retry-After": "5"})
    fps = fps or studio.config.wall_fps
    boundary = "latentstudioframe"

    async def body():
        end = time.monotonic() + seconds
        with studio.streams.hold(client):
            async for _, jpeg in wall_frames(studio, screen, of, fps):
                if time.monotonic() > end:  # a closed connection ends the stream through Starlette itself
                    return
                yield (f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode() \
                    + jpeg + b"\r\n"

    return StreamingResponse(body(), media_type=f"multipart/x-mixed-replace; boundary={boundary}")


class _Walk(NamedTuple):
    timeline: object
    fps: int
    model_version: int  # the engine's model the timeline was built for
    text: str  # the spec, to build the same walk again after a model switch


async def _send_error(websocket: WebSocket, detail: str, **extra) -> None:
    await websocket.send_text(json.dumps({"type": "error", "detail": detail, **extra}))


async def _walk_spec(studio, websocket: WebSocket, text: str, client: str, limit: bool = True) -> _Walk | None:
    """The walk of a spec sent by the client, or None after telling it what is wrong: bad JSON, an unknown
    drawing, a wrong latent shape, or over the client's generate rate limit (a spec costs one per key, as
    /api/generate does; `limit` False for the same spec built again after a model switch)."""
    engine = studio.engine
    try:
        spec = WalkSpec.model_validate_json(text)
        if limit:
            c = studio.config
            studio.limiter.check(client, "generate", c.generate_rate, c.generate_burst, len(spec.keys))
        params = {**spec.model_dump(exclude_none=True), "keys": [k.model_dump(exclude_none=True) for k in spec.keys]}
        # the model version is read on the model thread, with the timeline: a switch is either before or after
        tl, version = await engine.call(
            lambda: (walk_timeline(engine, params, studio.config.truncation), engine.model_version))
    except HTTPException as exc:  # the rate limit: the socket stays open, the walk that was playing goes on
        await _send_error(websocket, str(exc.detail), retry_after=float((exc.headers or {}).get("Retry-After", 1)))
        return None
    except (ValidationError, ValueError, UserError) as exc:  # bad JSON, unknown drawing, wrong latent shape
        await _send_error(websocket, str(exc).splitlines()[0])
        return None
    await websocket.send_text(json.dumps({"type": "walk", "frames": tl.frames, "fps": spec.fps}))
    return _Walk(tl, spec.fps, version, text)


async def _walk_frame(studio, websocket: WebSocket, walk: _Walk, start: float) -> int | None:
    """Render and send the frame of `walk` due now and return its number; None if the model was switched under
    it (build the walk again)."""
    k = int((time.time() - start) * walk.fps)
    try:
        jpeg = await studio.engine.render(GenItem(ws=walk.timeline.frame(k), quality=studio.config.jpeg_quality))
    except UserError:  # a latent of the model before a switch (the item failed alone, nobody else's request)
        if walk.model_version != studio.engine.model_version:
            return None
        raise
    await websocket.send_bytes(jpeg)
    return k


@router.websocket("/walk/ws")
async def walk_ws(websocket: WebSocket):
    """Send a WalkSpec as JSON; frames of that walk come back as binary JPEG messages at spec.fps, looping.
    Send another spec at any time to change the walk; errors come back as {"type": "error", "detail": ...}.
    After a model switch the walk is built again on the new model (a new {"type": "walk"} message), or, if
    its keys do not fit the new model, an error says so and the stream waits for another spec."""
    studio = websocket.app.state.studio
    client = _ws_client(websocket)
    await websocket.accept()
    if studio.streams.full(client):
        return await _refuse(websocket, studio.streams.reason(client))
    walk, start = None, time.time()
    receiver = asyncio.ensure_future(websocket.receive_text())
    try:
        with studio.streams.hold(client):
            while True:
                if walk is None or receiver.done():
                    text = await receiver
                    receiver = asyncio.ensure_future(websocket.receive_text())
                    new = await _walk_spec(studio, websocket, text, client)
                    if new is not None:  # a bad spec keeps the walk that was playing
                        walk, start = new, time.time()
                    if walk is None:
                        continue
                k = await _walk_frame(studio, websocket, walk, start) \
                    if walk.model_version == studio.engine.model_version else None
                if k is None:  # the model was switched: the same spec, built again on the new model
                    walk, start = await _walk_spec(studio, websocket, walk.text, client, limit=False), time.time()
                    continue
                delay = start + (k + 1) / walk.fps - time.time()
                if delay > 0:
                    await asyncio.wait({receiver}, timeout=delay)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiver.cancel()

"""Live frames: the Wall (server-clock walk through the gallery) and walk previews, as WebSocket binary JPEG
messages or as a multipart/x-mixed-replace (MJPEG) HTTP stream. Frames are paced by the clock: when rendering
falls behind, frames are skipped rather than queued, so a stream never drifts from real time."""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from ...errors import UserError
from .. import timeline
from ..engine import GenItem
from ..schemas import WalkSpec

router = APIRouter(prefix="/api", tags=["stream"])


@router.get("/clock", summary="server time (screens align their walks to it)")
async def clock() -> dict:
    return {"server_time": time.time()}


@router.get("/wall", summary="the wall's current walk: members, cycle length, fps, start time")
async def wall_info(request: Request) -> dict:
    wall = request.app.state.studio.wall
    await wall.refresh()
    return wall.describe()


async def wall_frames(studio, screen: int, of: int, fps: int):
    """Yield (frame index, JPEG) for one screen at `fps`, following the server clock."""
    wall, engine = studio.wall, studio.engine
    period = 1.0 / fps
    next_t = time.time()
    while True:
        await wall.refresh()
        now = time.time()
        ws = wall.frame(now, screen, of)
        jpeg = await engine.render(GenItem(ws=ws, quality=studio.config.jpeg_quality))
        yield wall.frame_index(now, screen, of), jpeg
        next_t += period
        delay = next_t - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_t = time.time()  # behind: drop the missed ticks


@router.websocket("/wall/ws")
async def wall_ws(websocket: WebSocket, screen: int = Query(0, ge=0, le=63), of: int = Query(1, ge=1, le=64),
                  fps: int | None = Query(None, ge=1, le=60)):
    studio = websocket.app.state.studio
    await websocket.accept()
    fps = fps or studio.config.wall_fps
    await websocket.send_text(json.dumps({"type": "hello", "server_time": time.time(), "fps": fps,
                                          "screen": screen, "of": of}))
    sent_version = -1
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
    fps = fps or studio.config.wall_fps
    boundary = "latentstudioframe"

    async def body():
        end = time.monotonic() + seconds
        async for _, jpeg in wall_frames(studio, screen, of, fps):
            if time.monotonic() > end:  # a closed connection ends the stream through Starlette itself
                return
            yield (f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode() \
                + jpeg + b"\r\n"

    return StreamingResponse(body(), media_type=f"multipart/x-mixed-replace; boundary={boundary}")


async def _walk_timeline(studio, spec: WalkSpec) -> timeline.Timeline:
    keys = [k.model_dump(exclude_none=True) for k in spec.keys]

    def work():
        ws = [studio.engine.resolve(k, studio.config.truncation) for k in keys]
        return timeline.build(ws, spec.mode, spec.frames, spec.stops, spec.strength, spec.seed, spec.cyclic)

    return await studio.engine.call(work)


@router.websocket("/walk/ws")
async def walk_ws(websocket: WebSocket):
    """Send a WalkSpec as JSON; frames of that walk come back as binary JPEG messages at spec.fps, looping.
    Send another spec at any time to change the walk; errors come back as {"type": "error", "detail": ...}."""
    studio = websocket.app.state.studio
    await websocket.accept()
    tl, fps, start = None, 24, time.time()
    receiver = asyncio.ensure_future(websocket.receive_text())
    try:
        while True:
            if tl is None or receiver.done():
                text = await receiver
                receiver = asyncio.ensure_future(websocket.receive_text())
                try:
                    spec = WalkSpec.model_validate_json(text)
                    tl, fps, start = await _walk_timeline(studio, spec), spec.fps, time.time()
                    await websocket.send_text(json.dumps({"type": "walk", "frames": tl.frames, "fps": fps}))
                except (ValidationError, ValueError, UserError) as exc:  # unknown drawing, wrong shape, bad JSON
                    await websocket.send_text(json.dumps({"type": "error", "detail": str(exc).splitlines()[0]}))
                    continue
            k = int((time.time() - start) * fps)
            jpeg = await studio.engine.render(GenItem(ws=tl.frame(k), quality=studio.config.jpeg_quality))
            await websocket.send_bytes(jpeg)
            delay = start + (k + 1) / fps - time.time()
            if delay > 0:
                await asyncio.wait({receiver}, timeout=delay)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiver.cancel()

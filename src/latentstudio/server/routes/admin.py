"""Admin actions (need the token printed at start): delete a drawing, clear the wall, switch the model."""

from __future__ import annotations

from pathlib import Path as FsPath

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from starlette.concurrency import run_in_threadpool

from .. import adapters
from ..safety import allowed_model_dirs, check_admin, check_model_path
from ..schemas import ModelSwitchBody
from ..store import NotFoundError
from . import studio

router = APIRouter(prefix="/api/admin", tags=["admin"])


def admin(request: Request) -> None:
    check_admin(request, studio(request).admin_token)


@router.get("/check", dependencies=[Depends(admin)], summary="is this token the admin token?")
async def check() -> dict:
    return {"ok": True}


@router.delete("/drawings/{drawing_id}", dependencies=[Depends(admin)], summary="delete a drawing everywhere")
async def delete_drawing(request: Request, drawing_id: str = Path(..., pattern=r"^[0-9a-f]{16}$")) -> dict:
    if not await run_in_threadpool(studio(request).store.delete_drawing, drawing_id):
        raise NotFoundError(f"unknown drawing {drawing_id}")
    return {"deleted": drawing_id}


@router.post("/wall/clear", dependencies=[Depends(admin)], summary="take every drawing off the wall (kept)")
async def clear_wall(request: Request) -> dict:
    return {"removed": await run_in_threadpool(studio(request).store.clear_gallery)}


@router.post("/model", dependencies=[Depends(admin)], summary="switch the served model (a folder inside "
             "DATA/models or an allowed folder); kept across restarts")
async def switch_model(body: ModelSwitchBody, request: Request) -> dict:
    s = studio(request)
    text = body.path
    if not FsPath(text).is_absolute():
        text = str(FsPath(s.config.data_dir) / "models" / text)
    path = check_model_path(text, allowed_model_dirs(s.config))
    try:
        model = await s.engine.call(adapters.open_serving_model, str(path), s.engine.device)
    except Exception as exc:  # noqa: BLE001 - a broken model leaves the old one serving
        raise HTTPException(400, f"model {body.path!r} cannot be loaded: {str(exc).splitlines()[0]}") from None
    # the wall and open walk previews see engine.model_version move on and rebuild with latents of the new
    # model; latents of the old one that are still in flight fail alone (engine.synthesise)
    await s.engine.call(s.engine.swap_model, model)
    s.store.bump_version()  # the pages hear of it (the wall's members, the gallery's model tag)
    await run_in_threadpool(s.store.set_setting, "model", str(path))  # the next start serves it again
    return {"model": s.engine.describe()}

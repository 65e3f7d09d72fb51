"""Visitor drawings: upload (checked, re-encoded, queued for projection), status, image, latent, gallery."""

from __future__ import annotations

import io

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ..safety import check_image_upload, client_id, read_limited
from ..store import NotFoundError
from . import studio

router = APIRouter(prefix="/api", tags=["drawings"])
ID = Path(..., pattern=r"^[0-9a-f]{16}$", description="id returned when the drawing was submitted")


async def _upload_bytes(request: Request, limit: int) -> bytes:
    """The uploaded image bytes. The body is read whole with a hard limit first, multipart or not (room for the
    multipart headers on top), so nothing past the limit is ever buffered or spooled to a temporary file."""
    body = await read_limited(request, limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return body
    replayed = False

    async def replay():  # the multipart parser reads the bytes we already hold
        nonlocal replayed
        if replayed:
            return {"type": "http.disconnect"}
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=1, max_fields=8, max_part_size=limit) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(400, "multipart upload needs the image in a field named 'file'")
            payload = await upload.read(limit + 1)
    except HTTPException:
        raise
    except Exception as exc:  # noqa: BLE001 - the multipart parser's errors are all bad requests
        raise HTTPException(400, f"multipart upload could not be read: {exc}") from None
    if len(payload) > limit:
        raise HTTPException(413, f"upload passes the limit of {limit} bytes")
    return payload


def _decode_and_reencode(payload: bytes, max_bytes: int, max_pixels: int) -> tuple[bytes, int, int]:
    """Worker thread: check and decode the upload, flatten it and encode our own PNG (never the visitor's bytes)."""
    img = check_image_upload(payload, max_bytes, max_pixels)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), img.width, img.height


async def submit_drawing(request: Request, wall: bool) -> dict:
    s = studio(request)
    client = client_id(request)
    s.limiter.check(client, "upload", s.config.upload_rate, s.config.upload_burst)
    payload = await _upload_bytes(request, s.config.upload_max_bytes)
    # decoding a 16 megapixel image, PNG encoding and the fsync'd writes take long enough to stall every
    # stream on the event loop: they run on worker threads
    png, width, height = await run_in_threadpool(_decode_and_reencode, payload, s.config.upload_max_bytes,
                                                 s.config.upload_max_pixels)
    drawing_id, job_id = await run_in_threadpool(s.store.add_drawing, png, width, height, client, wall)
    s.jobs.submit(job_id)
    return {"id": drawing_id, "job": job_id, "status": "queued", "status_url": f"/api/drawings/{drawing_id}",
            "job_url": f"/api/jobs/{job_id}"}


@router.post("/drawings", status_code=202, summary="submit a drawing (raw image body or multipart field 'file'); "
             "it is projected and joins the wall")
async def post_drawing(request: Request, wall: bool = Query(True, description="add to the wall when projected")):
    return await submit_drawing(request, wall)


@router.post("/project", status_code=202, summary="projection job: submit an image, poll /api/jobs/{id}, fetch "
             "the result latent (does not join the wall)")
async def post_project(request: Request):
    return await submit_drawing(request, wall=False)


def _drawing(request: Request, drawing_id: str) -> dict:
    row = studio(request).store.get_drawing(drawing_id)
    if row is None:
        raise NotFoundError(f"unknown drawing {drawing_id}")
    return row


def _public(row: dict) -> dict:
    out = {k: row[k] for k in ("id", "created", "width", "height", "status", "error") if k in row}
    out.update(image=f"/api/drawings/{row['id']}/image", job=row.get("job_id"), on_wall=row.get("on_wall"))
    if row["status"] == "done":
        out["latent"] = f"/api/drawings/{row['id']}/latent"
        out["key"] = {"drawing": row["id"]}
    return out


@router.get("/drawings", summary="latest drawings")
async def list_drawings(request: Request, limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)):
    return {"drawings": [_public(r) for r in studio(request).store.list_drawings(limit, offset)]}


@router.get("/drawings/{drawing_id}", summary="status of a drawing (queued, projecting, done, failed)")
async def get_drawing(request: Request, drawing_id: str = ID) -> dict:
    return _public(_drawing(request, drawing_id))


@router.get("/drawings/{drawing_id}/image", summary="the drawing as PNG")
async def drawing_image(request: Request, drawing_id: str = ID):
    _drawing(request, drawing_id)
    return FileResponse(studio(request).store.drawing_path(drawing_id), media_type="image/png")


@router.get("/drawings/{drawing_id}/latent", summary="the projected latent (projected_w.npz, or JSON)")
async def drawing_latent(request: Request, drawing_id: str = ID, format: str = Query("npz", pattern="^(npz|json)$")):
    s = studio(request)
    _drawing(request, drawing_id)
    path = s.store.latent_path(drawing_id)
    if not path.is_file():
        raise HTTPException(409, f"drawing {drawing_id} is not projected yet; poll /api/drawings/{drawing_id}")
    if format == "json":
        ws = s.engine.latent_lookup(drawing_id)
        return {"w": ws.tolist(), "shape": list(ws.shape)}
    return FileResponse(path, media_type="application/octet-stream", filename=f"{drawing_id}_projected_w.npz")


@router.get("/gallery", summary="drawings on the wall, oldest first (and the served model's tag, which a model "
            "switch changes)")
async def gallery(request: Request) -> dict:
    s = studio(request)
    return {"version": s.store.version, "model": s.engine.model_tag,
            "entries": [{"id": e["id"], "added": e["added"], "drawing": e["drawing_id"],
                         "image": f"/api/drawings/{e['drawing_id']}/image", "key": {"drawing": e["drawing_id"]}}
                        for e in s.store.gallery()]}

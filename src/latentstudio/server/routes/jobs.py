"""Job status and video render jobs."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ..jobs import walk_timeline
from ..safety import client_id
from ..schemas import RenderBody
from ..store import NotFoundError
from . import studio

router = APIRouter(prefix="/api", tags=["jobs"])
ID = Path(..., pattern=r"^[0-9a-f]{16}$", description="job id")


def _job(request: Request, job_id: str) -> dict:
    job = studio(request).store.get_job(job_id)
    if job is None:
        raise NotFoundError(f"unknown job {job_id}")
    return job


@router.get("/jobs/{job_id}", summary="status, progress and result of a job")
async def get_job(request: Request, job_id: str = ID) -> dict:
    job = _job(request, job_id)
    return {k: job[k] for k in ("id", "kind", "status", "progress", "result", "error", "created", "updated")}


@router.post("/render", status_code=202, summary="render a walk over keys into an MP4 (poll the job, then "
             "download /api/jobs/{id}/video)")
async def render(body: RenderBody, request: Request) -> dict:
    s = studio(request)
    s.limiter.check(client_id(request), "job", s.config.job_rate, s.config.job_burst)
    spec = body.model_dump(exclude_none=True)
    spec["keys"] = [k.model_dump(exclude_none=True) for k in body.keys]
    tl = await s.engine.call(walk_timeline, s.engine, spec, s.config.truncation)  # unknown keys: 4xx now
    if tl.frames > s.config.max_render_frames:
        raise HTTPException(422, f"the walk has {tl.frames} frames; this server renders at most "
                                 f"{s.config.max_render_frames} (fewer keys, frames or stops)")
    job_id = await run_in_threadpool(s.store.add_job, "render", spec)
    s.jobs.submit(job_id)
    return {"job": job_id, "status": "queued", "job_url": f"/api/jobs/{job_id}"}


@router.get("/jobs/{job_id}/video", summary="the rendered MP4 of a finished render job")
async def video(request: Request, job_id: str = ID):
    job = _job(request, job_id)
    if job["kind"] != "render":
        raise HTTPException(400, f"job {job_id} is a {job['kind']} job; only render jobs have a video")
    path = studio(request).store.render_path(job_id)
    if job["status"] != "done" or not path.is_file():
        raise HTTPException(409, f"job {job_id} is {job['status']}; the video is there once it is done")
    return FileResponse(path, media_type="video/mp4", filename=f"latentstudio-{job_id}.mp4")

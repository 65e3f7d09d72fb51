"""Background jobs (projection of drawings, video renders): queued in SQLite, run one at a time on their own
thread, resumed after a restart (a job that was running when the server stopped starts again)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

import torch

from ..errors import UserError
from ..render.stream import iter_frames
from . import adapters, timeline
from .store import Store

log = logging.getLogger("latentstudio.server")


class JobRunner:
    def __init__(self, store: Store, engine, config):
        self.store = store
        self.engine = engine
        self.config = config
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jobs")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self._projector: tuple[int, adapters.DrawingProjector] | None = None  # (id of G, projector), job thread

    def start(self) -> None:
        self.queue = asyncio.Queue()
        for job in self.store.pending_jobs():  # resume what a previous run left
            self.queue.put_nowait(job["id"])
        self.task = asyncio.get_running_loop().create_task(self._run(), name="jobs")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, job_id: str) -> None:
        if self.queue is not None:
            self.queue.put_nowait(job_id)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job_id = await self.queue.get()
            job = self.store.get_job(job_id)
            if job is None or job["status"] not in ("queued", "running"):
                continue
            await loop.run_in_executor(self.executor, self.run_job, job)

    def run_job(self, job: dict) -> None:
        """Job thread: run one job and record its outcome; errors fail the job, never the runner."""
        self.store.update_job(job["id"], status="running", progress=0.0)
        try:
            if job["kind"] == "project":
                result = self._project(job)
            elif job["kind"] == "render":
                result = self._render(job)
            else:
                raise UserError(f"unknown job kind {job['kind']!r}")
        except Exception as exc:  # noqa: BLE001 - recorded on the job for the client to read
            log.exception("job %s failed", job["id"])
            self.store.update_job(job["id"], status="failed", error=str(exc) or exc.__class__.__name__)
            if job["kind"] == "project":
                self.store.set_drawing_status(job["params"]["drawing_id"], "failed", str(exc))
            return
        self.store.update_job(job["id"], status="done", progress=1.0, result=result)

    def _project(self, job: dict) -> dict:
        drawing_id = job["params"]["drawing_id"]
        if self.store.get_drawing(drawing_id) is None:
            raise UserError(f"drawing {drawing_id} was deleted before it was projected")
        self.store.set_drawing_status(drawing_id, "projecting")
        from PIL import Image

        with Image.open(self.store.drawing_path(drawing_id)) as img:
            drawing = img.convert("RGB")
        ws = self.projector()(drawing, self.config.project_budget_s)
        adapters.save_latent(self.store.latent_path(drawing_id), ws)
        if not self.store.finish_projection(drawing_id, job["params"].get("wall", True)):
            raise UserError(f"drawing {drawing_id} was deleted while it was projected")
        return {"drawing_id": drawing_id, "latent": f"/api/drawings/{drawing_id}/latent"}

    def projector(self) -> adapters.DrawingProjector:
        model = self.engine.model
        if self._projector is None or self._projector[0] != id(model.G):  # built once per served model
            self._projector = (id(model.G), adapters.DrawingProjector(model, self.engine.device,
                                                                      self.config.project_loss))
        return self._projector[1]

    @torch.no_grad()
    def _render(self, job: dict) -> dict:
        spec = job["params"]
        G = self.engine.G
        keys = [self.engine.resolve(k, self.config.truncation) for k in spec["keys"]]
        tl = timeline.build(keys, spec["mode"], spec["frames"], spec["stops"], spec["strength"], spec["seed"],
                            spec["cyclic"])
        total = min(tl.frames, self.config.max_render_frames)
        path = self.store.render_path(job["id"])
        with adapters.open_video_writer(path, spec["fps"], G.img_resolution) as writer:  # no partial file on error
            done = 0
            for frames in iter_frames(G, tl.walk, batch=8, stop=total):
                writer.write(frames if frames.shape[-1] == 3 else frames.repeat(3, axis=-1))
                done += len(frames)
                self.store.update_job(job["id"], progress=done / total)
        return {"frames": total, "fps": spec["fps"], "video": f"/api/jobs/{job['id']}/video"}

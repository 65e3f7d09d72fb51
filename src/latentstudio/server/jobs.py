"""Background jobs (projection of drawings, video renders): queued in SQLite, taken one at a time by the job
thread, resumed after a restart (a job that was running when the server stopped starts again).

The job thread never runs the generator itself: every forward pass of a job (a render batch, a projection) is
handed to the engine's model thread, so on a small machine one thing at a time uses the cores, and a render
interleaves batch by batch with the live requests instead of competing with them for the same cores. Renders
check for a stop between batches: stopping the server does not wait for a whole video, and the job is left
queued (no partial file) to run again at the next start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable

from ..errors import UserError
from . import adapters, timeline
from .store import Store

log = logging.getLogger("latentstudio.server")
RENDER_BATCH = 8  # frames per model-thread item of a render job


class JobCancelled(Exception):
    """The server is stopping: the job goes back to the queue and runs again at the next start."""


def walk_timeline(engine, spec: dict, default_psi: float) -> timeline.Timeline:
    """Model thread: the timeline of a walk spec (keys resolved to ws; UserError for unknown drawings)."""
    keys = [engine.resolve(k, default_psi) for k in spec["keys"]]
    return timeline.build(keys, spec.get("mode", "interpolate"), spec.get("frames", 48), spec.get("stops", 7),
                          spec.get("strength", 0.6), spec.get("seed", 0), spec.get("cyclic", False))


class JobRunner:
    def __init__(self, store: Store, engine, config):
        self.store = store
        self.engine = engine
        self.config = config
        self.executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jobs")
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.stopping = threading.Event()
        # called (job thread) with the seconds a job is about to hold the model thread; the app renders the
        # wall ahead for that long so that the screens do not freeze while a drawing is projected
        self.before_long_work: Callable[[float], None] | None = None
        self._projector: tuple[int, adapters.DrawingProjector] | None = None  # (id of G, projector), model thread

    def start(self) -> None:
        self.queue = asyncio.Queue()
        for job in self.store.pending_jobs():  # resume what a previous run left
            self.queue.put_nowait(job["id"])
        self.task = asyncio.get_running_loop().create_task(self._run(), name="jobs")

    async def stop(self) -> None:
        """Stop taking jobs; a render in progress stops at its next batch (at most one projection is waited for)."""
        self.stopping.set()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=True)

    def submit(self, job_id: str) -> None:
        if self.queue is not None:
            self.queue.put_nowait(job_id)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job_id = await self.queue.get()
            job = await asyncio.to_thread(self.store.get_job, job_id)
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
        except JobCancelled:
            log.info("job %s stopped with the server; it runs again at the next start", job["id"])
            self.store.update_job(job["id"], status="queued", progress=0.0)
            return
        except Exception as exc:  # noqa: BLE001 - recorded on the job for the client to read
            log.exception("job %s failed", job["id"])
            self.store.update_job(job["id"], status="failed", error=str(exc) or exc.__class__.__name__)
            if job["kind"] == "project":
                self.store.set_drawing_status(job["params"]["drawing_id"], "failed", str(exc))
            return
        self.store.update_job(job["id"], status="done", progress=1.0, result=result)

    def _on_model_thread(self, fn, *args):
        return self.engine.model_executor.submit(fn, *args).result()

    def _project(self, job: dict) -> dict:
        drawing_id = job["params"]["drawing_id"]
        if self.store.get_drawing(drawing_id) is None:
            raise UserError(f"drawing {drawing_id} was deleted before it was projected")
        if self.stopping.is_set():
            raise JobCancelled
        self.store.set_drawing_status(drawing_id, "projecting")
        from PIL import Image

        with Image.open(self.store.drawing_path(drawing_id)) as img:
            drawing = img.convert("RGB")
        # the projection holds the model thread for its budget (project_budget_s): live requests wait for it
        # rather than halve its speed and theirs by sharing the cores; the wall is rendered ahead first
        if self.before_long_work is not None:
            try:
                self.before_long_work(self.config.project_budget_s)
            except Exception:  # noqa: BLE001 - a wall that could not render ahead never fails a drawing
                log.warning("could not render the wall ahead of a projection", exc_info=True)
        ws = self._on_model_thread(lambda: self.projector()(drawing, self.config.project_budget_s))
        adapters.save_latent(self.store.latent_path(drawing_id), ws)
        if not self.store.finish_projection(drawing_id, job["params"].get("wall", True)):
            raise UserError(f"drawing {drawing_id} was deleted while it was projected")
        return {"drawing_id": drawing_id, "latent": f"/api/drawings/{drawing_id}/latent"}

    def projector(self) -> adapters.DrawingProjector:
        """Model thread: the projector of the served model, built once per model (it loads the loss)."""
        model = self.engine.model
        if self._projector is None or self._projector[0] != id(model.G):
            self._projector = (id(model.G), adapters.DrawingProjector(model, self.engine.device,
                                                                      self.config.project_loss))
        return self._projector[1]

    def _render(self, job: dict) -> dict:
        spec = job["params"]
        tl = self._on_model_thread(walk_timeline, self.engine, spec, self.config.truncation)
        total = tl.frames
        if total > self.config.max_render_frames:  # checked at submit; a restart may have lowered the limit
            raise UserError(f"the walk has {total} frames; this server renders at most "
                            f"{self.config.max_render_frames}")
        path = self.store.render_path(job["id"])
        size = self.engine.G.img_resolution
        with adapters.open_video_writer(path, spec["fps"], size) as writer:  # no partial file on any error
            for start in range(0, total, RENDER_BATCH):
                if self.stopping.is_set():
                    raise JobCancelled
                frames = self._on_model_thread(self.engine.render_frames, tl, start, min(total, start + RENDER_BATCH))
                writer.write(frames)
                self.store.update_job(job["id"], progress=min(total, start + RENDER_BATCH) / total)
        return {"frames": total, "fps": spec["fps"], "video": f"/api/jobs/{job['id']}/video"}

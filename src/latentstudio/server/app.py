"""The FastAPI application: lifespan (model, store, jobs, wall), routers, pages and error handling."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..device import resolve_device
from ..errors import UserError
from . import adapters
from .config import ServeConfig
from .engine import Engine
from .jobs import JobRunner
from .middleware import ServerMiddleware
from .safety import RateLimiter, StreamSlots, allowed_model_dirs, check_model_path, make_admin_token
from .store import NotFoundError, Store
from .wall import Wall, WallFrames

log = logging.getLogger("latentstudio.server")
STATIC = Path(__file__).parent / "static"
PAGES = ("studio", "draw", "wall")
UPLOAD_PATHS = frozenset({"/api/drawings", "/api/project"})


@dataclasses.dataclass
class Studio:
    """Everything a request handler needs, kept on app.state.studio (no module-level state)."""

    config: ServeConfig
    store: Store
    engine: Engine
    jobs: JobRunner
    wall: Wall
    limiter: RateLimiter
    admin_token: str
    vendor_dirs: list[Path]
    streams: StreamSlots
    wall_frames: WallFrames


def vendor_dirs() -> list[Path]:
    """Where the npm packages (p5, simplex-noise) may be: $LATENTSTUDIO_NODE_MODULES, then node_modules in the
    source checkout (setup installs them there with `npm ci`), then the working directory."""
    import os

    here = Path(__file__).resolve()
    dirs = [Path(os.environ["LATENTSTUDIO_NODE_MODULES"])] if os.environ.get("LATENTSTUDIO_NODE_MODULES") else []
    dirs += [p / "node_modules" for p in here.parents[:4]] + [Path.cwd() / "node_modules"]
    return [d for d in dirs if d.is_dir()]


def create_app(config: ServeConfig, model=None) -> FastAPI:
    """Build the app. `model` (a LoadedModel) skips loading, for tests; otherwise config.model is opened in the
    lifespan, once."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        device = resolve_device(config.device)
        store = Store(config.data_dir)
        loaded = _switched_model(store, config, device)
        if loaded is None:
            loaded = model if model is not None else adapters.open_serving_model(config.model, device)
        engine = Engine(loaded, device, config.max_batch, config.max_wait_ms, config.batching,
                        threads=config.threads, workers=config.workers)
        engine.latent_lookup = lambda drawing_id: _lookup_latent(store, drawing_id)
        wall = Wall(store, engine, config)
        studio = Studio(config, store, engine, JobRunner(store, engine, config), wall, RateLimiter(),
                        make_admin_token(config.admin_token), vendor_dirs(), StreamSlots(config.max_streams_per_client),
                        WallFrames(wall, engine, config.jpeg_quality, config.wall_batch))
        app.state.studio = studio
        loop = asyncio.get_running_loop()
        studio.jobs.before_long_work = lambda seconds: asyncio.run_coroutine_threadsafe(
            studio.wall_frames.cover(min(seconds, 30.0)), loop).result(timeout=60)
        engine.start()
        if config.start_jobs:
            studio.jobs.start()
        try:
            yield
        finally:
            await studio.jobs.stop()
            await engine.stop()
            store.close()

    app = FastAPI(title="latentstudio", version=__version__, lifespan=lifespan,
                  description="Local StyleGAN server: RunwayML-compatible /query and /info, the studio API, "
                              "and the Studio, Draw and Wall pages.")
    _add_error_handlers(app)
    # image uploads read their own bodies, bounded by upload_max_bytes (routes/drawings.py)
    app.add_middleware(ServerMiddleware, max_body=config.json_max_bytes, streamed_paths=UPLOAD_PATHS)
    from .routes import admin, api, drawings, jobs, runway, stream

    for module in (runway, api, drawings, jobs, stream, admin):
        app.include_router(module.router)
    _add_pages(app)
    return app


def examples_dir() -> Path | None:
    """examples/ of the source checkout (served at /examples/ so the sketches run same-origin)."""
    for parent in Path(__file__).resolve().parents[:4]:
        if (parent / "examples" / "spacewalk").is_dir():
            return parent / "examples"
    return None


def _switched_model(store: Store, config: ServeConfig, device):
    """The model an admin switched to before the last stop (None if none, or if it cannot be served now: its
    folder is no longer allowed, or it fails to load; the configured model is served then, with a warning)."""
    saved = store.get_setting("model")
    if not saved:
        return None
    try:
        path = check_model_path(saved, allowed_model_dirs(config))  # the folders allowed by *this* start
        loaded = adapters.open_serving_model(str(path), device)
    except Exception as exc:  # noqa: BLE001 - one line in the log; the server still starts
        log.warning("not serving the switched model %s again: %s", saved, getattr(exc, "detail", None) or exc)
        return None
    log.warning("serving %s (switched to by an admin before the last stop)", path)
    return loaded


def _lookup_latent(store: Store, drawing_id: str):
    path = store.latent_path(drawing_id)
    if not path.is_file():
        raise NotFoundError(f"drawing {drawing_id}: no projected latent (unknown id, or not projected yet)")
    return adapters.load_latent(path)


def _add_error_handlers(app: FastAPI) -> None:
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException

    from .routes.runway import remember_error

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        status = 404 if isinstance(exc, NotFoundError) else 400
        remember_error(request, exc)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        remember_error(request, exc.detail)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        remember_error(request, f"{where}: {first.get('msg', 'invalid request')}")
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid request')}",
                             "errors": [{"loc": e.get("loc"), "msg": e.get("msg")} for e in errors]},
                            status_code=422)


def _add_pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)

    for page in PAGES:
        app.add_api_route(f"/{page}", _page(page), include_in_schema=False, methods=["GET"])

    @app.get("/vendor/{name}", include_in_schema=False)
    async def vendor(name: str, request: Request):
        files = {"p5.min.js": "p5/lib/p5.min.js", "simplex-noise.js": "simplex-noise/dist/esm/simplex-noise.js"}
        if name not in files:
            return JSONResponse({"detail": f"unknown vendor file {name!r}"}, status_code=404)
        for d in request.app.state.studio.vendor_dirs:
            if (d / files[name]).is_file():
                return FileResponse(d / files[name], media_type="text/javascript")
        return JSONResponse({"detail": f"{files[name]} is not installed: run `npm ci` in the latentstudio checkout "
                                       "(scripts/setup-pages.sh)"}, status_code=503)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    examples = examples_dir()
    if examples is not None:
        app.mount("/examples", StaticFiles(directory=examples, html=True), name="examples")


def _page(name: str):
    async def page():
        return FileResponse(STATIC / f"{name}.html")

    return page

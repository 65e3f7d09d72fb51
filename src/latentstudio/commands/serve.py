"""`latentstudio serve`: the local model server with the Studio, Draw and Wall pages."""

from __future__ import annotations

from .common import add_command, add_device_argument, add_model_argument, positive_int, write_run_record


def register(sub) -> None:
    p = add_command(sub, "serve", "serve a model: RunwayML-compatible /query, the studio API and the Studio, Draw "
                    "and Wall pages", "latentstudio serve models/smiles --data installation/ --port 8000")
    add_model_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port")
    p.add_argument("--data", default=".studio", help="folder for the SQLite store, drawings, latents and videos")
    add_device_argument(p)
    p.add_argument("--no-batching", action="store_true", help="render every request on its own")
    p.add_argument("--max-batch", type=positive_int, default=16, help="largest batch of concurrent requests")
    p.add_argument("--max-wait-ms", type=float, default=4.0, help="how long a request waits for others to batch")
    p.add_argument("--threads", type=int, default=0, help="torch threads of the model (0: one less than the cores, "
                   "leaving one to the web server)")
    p.add_argument("--workers", type=int, default=0, help="batches rendered at once (0: cores // threads on a CPU, "
                   "1 on a GPU)")
    p.add_argument("--wall-fps", type=positive_int, default=24, help="frames per second of the Wall")
    p.add_argument("--max-streams", type=positive_int, default=8, help="open wall/preview streams per client")
    p.add_argument("--project-seconds", type=float, default=4.0, help="projection time per visitor drawing")
    p.add_argument("--project-loss", default="vgg+pixel", help="projection loss (pixel: no VGG16, faster, rougher)")
    p.add_argument("--admin-token", default=None, help="admin token (default: a fresh random one, printed)")
    p.add_argument("--allow-models", action="append", default=[], metavar="DIR",
                   help="extra folder admins may switch models from (DATA/models is always allowed)")
    p.add_argument("--log-level", default="warning", help="uvicorn log level")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    # Before torch loads (the imports below): idle OpenMP threads sleep rather than spin on the cores the event
    # loop needs between two batches.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from ..errors import UserError, require

    require("fastapi", "serve", "latentstudio serve")
    uvicorn = require("uvicorn", "serve", "latentstudio serve")
    from ..server.app import create_app
    from ..server.config import ServeConfig
    from ..server.safety import make_admin_token

    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: use 1 .. 65535")
    if args.threads < 0:
        raise UserError(f"--threads {args.threads}: use 0 (automatic) or a positive number")
    if args.workers < 0:
        raise UserError(f"--workers {args.workers}: use 0 (automatic) or a positive number")
    check_model(args.model)
    config = ServeConfig(model=args.model, data_dir=args.data, host=args.host, port=args.port, device=args.device,
                         batching=not args.no_batching, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                         threads=args.threads, workers=args.workers, max_streams_per_client=args.max_streams,
                         wall_fps=args.wall_fps,
                         project_budget_s=args.project_seconds, project_loss=args.project_loss,
                         admin_token=make_admin_token(args.admin_token), allowed_model_dirs=tuple(args.allow_models))
    write_run_record(args.data, "serve", argparse_safe(args), {"config": {**config.to_dict(), "admin_token": "***"}})
    base = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}"
    print(f"latentstudio serve: data in {args.data}\n"
          f"  Studio  {base}/studio\n  Draw    {base}/draw\n"
          f"  Wall    {base}/wall   (two screens: {base}/wall?screen=0&of=2 and ?screen=1&of=2)\n"
          f"  API     {base}/docs   RunwayML: POST {base}/query, GET {base}/info\n"
          f"  admin token: {config.admin_token}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("  note: bound to a network address; anyone on the network can draw and view", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level=args.log_level, ws="auto")
    return 0


def check_model(spec: str | None) -> None:
    """Fail with one line before the server starts (the model itself is loaded once, in the app's lifespan)."""
    from pathlib import Path

    from ..errors import UserError
    from ..io import registry
    from ..io.model_dir import read_config

    if str(spec).startswith(("http://", "https://")):
        return  # URLs are fetched (and checked) by the loader
    if spec in (None, "", "default"):  # the built-in default model: it must be installed (no fallback)
        read_config(registry.resolve_model_path(None))
        return
    path = Path(spec).expanduser()
    if path.suffix == ".pkl" and path.is_file():
        return
    if path.suffix == ".pkl":
        raise UserError(f"MODEL {spec}: no such file")
    read_config(path)


def argparse_safe(args):
    """The arguments without the admin token (the run record must not leak it)."""
    import argparse

    return argparse.Namespace(**{k: ("***" if k == "admin_token" and v else v) for k, v in vars(args).items()})

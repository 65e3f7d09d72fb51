"""Settings of one studio server, as a frozen config (written next to the data as serve.json)."""

from __future__ import annotations

import dataclasses

from ..config import Config


@dataclasses.dataclass(frozen=True)
class ServeConfig(Config):
    model: str | None = None  # model directory / .pkl; None = the built-in default model
    data_dir: str = ".studio"  # SQLite file, drawings, latents, renders
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "auto"
    # Request batching: concurrent generation requests wait up to max_wait_ms to share one forward pass.
    batching: bool = True
    max_batch: int = 16
    max_wait_ms: float = 4.0
    threads: int = 0  # torch threads of the model thread; 0 = cores - 1 (see engine.torch_threads)
    workers: int = 0  # batches rendered at once; 0 = cores // threads on a CPU, 1 on a GPU (engine.synthesis_workers)
    jpeg_quality: int = 90
    # Uploads: size on the wire, decoded pixel count, and what the drawing is resized to before projection.
    upload_max_bytes: int = 4 * 1024 * 1024
    upload_max_pixels: int = 4096 * 4096
    json_max_bytes: int = 4 * 1024 * 1024  # any other request body (a full 18 x 512 ws key is ~200 kB of JSON)
    # Per-client rate limits (token buckets: sustained rate per second, burst size).
    generate_rate: float = 200.0
    generate_burst: int = 400
    upload_rate: float = 0.2  # one drawing every 5 s sustained ...
    upload_burst: int = 5  # ... after a burst of 5
    job_rate: float = 0.5
    job_burst: int = 10
    # Projection of visitor drawings (seconds of optimisation per drawing).
    project_budget_s: float = 4.0
    project_loss: str = "vgg+pixel"  # invert.losses spec ("pixel" needs no VGG16 weights)
    # Wall: frames per second, frames of each noise-loop segment and of each interpolation between drawings.
    wall_fps: int = 24
    wall_loop_stops: int = 7
    wall_stop_frames: int = 24
    wall_morph_frames: int = 72
    wall_intro_frames: int = 36
    wall_loop_strength: float = 0.6
    wall_seeds: tuple = (0, 1, 2, 3)  # shown while the gallery is empty
    truncation: float = 0.7  # default truncation for seeds (Studio, Wall)
    max_stream_fps: int = 60
    max_render_frames: int = 3000
    max_streams_per_client: int = 8  # open wall / walk streams per client address (each costs fps images/s)
    wall_batch: int = 8  # wall frames rendered ahead per forward pass
    admin_token: str | None = None  # None: a fresh random token, printed at start
    allowed_model_dirs: tuple = ()  # extra folders `switch model` may load from (data_dir/models always)
    start_jobs: bool = True  # tests turn this off to leave jobs pending across a restart

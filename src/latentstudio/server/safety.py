"""What keeps a public installation safe: upload limits and type sniffing, per-client rate limits, the admin
token and the folders a model may be loaded from. Every refusal is an HTTPException with a one-line reason."""

from __future__ import annotations

import contextlib
import hmac
import io
import secrets
import threading
import time
from pathlib import Path

from fastapi import HTTPException, Request
from PIL import Image

# Magic numbers of the image types we accept; the file name and the declared content type are ignored.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


def sniff_image_type(head: bytes) -> str | None:
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def check_image_upload(payload: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    """Validate uploaded bytes and return the decoded first frame (RGB, alpha flattened on white).
    413 for too large (bytes or pixels), 415 for anything that is not an image we read, 400 if it is broken."""
    if len(payload) > max_bytes:
        raise HTTPException(413, f"upload is {len(payload)} bytes; the limit is {max_bytes} bytes")
    if not payload:
        raise HTTPException(400, "upload is empty; send a PNG or JPEG drawing")
    kind = sniff_image_type(payload[:16])
    if kind is None:
        raise HTTPException(415, "upload is not a PNG, JPEG, WebP, GIF or BMP image (checked by content, "
                                 "not by name)")
    try:
        with Image.open(io.BytesIO(payload)) as img:
            w, h = img.size  # from the header: nothing is decoded yet
            if w * h > max_pixels:
                raise HTTPException(413, f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels} pixels")
            img.seek(0)
            img.load()
            from ..data.images import flatten

            return flatten(img)
    except HTTPException:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise HTTPException(400, f"upload looks like {kind} but cannot be decoded ({exc.__class__.__name__})") \
            from None


async def read_limited(request: Request, max_bytes: int) -> bytes:
    """Read a request body, refusing with 413 as soon as it passes max_bytes (never buffering more)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise HTTPException(413, f"request body is {declared} bytes; the upload limit is {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes + 64 * 1024:  # room for multipart headers
            raise HTTPException(413, f"request body passes the upload limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class RateLimiter:
    """Token buckets per (client, category): `rate` tokens per second up to `burst`. Thread-safe."""

    def __init__(self):
        self.lock = threading.Lock()
        self.buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def check(self, client: str, category: str, rate: float, burst: int, cost: float = 1.0) -> None:
        now = time.monotonic()
        with self.lock:
            if len(self.buckets) > 100_000:  # bound memory under a flood of addresses
                self.buckets.clear()
            tokens, last = self.buckets.get((client, category), (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens < cost:
                wait = (cost - tokens) / rate if rate > 0 else 60.0
                self.buckets[(client, category)] = (tokens, now)
                raise HTTPException(429, f"too many {category} requests from {client}; retry in {wait:.1f} s",
                                    headers={"Retry-After": str(max(1, int(wait + 0.999)))})
            self.buckets[(client, category)] = (tokens - cost, now)


class StreamSlots:
    """Open streams (wall and walk WebSockets, MJPEG) per client: each costs the server fps images a second, so a
    client may hold at most `limit` at once. Event loop only."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.open: dict[str, int] = {}

    def full(self, client: str) -> bool:
        return self.open.get(client, 0) >= self.limit

    def reason(self, client: str) -> str:
        return f"too many open streams from {client} (limit {self.limit}); close another wall or preview first"

    @contextlib.contextmanager
    def hold(self, client: str):
        self.open[client] = self.open.get(client, 0) + 1
        try:
            yield
        finally:
            self.open[client] -= 1
            if not self.open[client]:
                del self.open[client]


def client_id(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def make_admin_token(given: str | None) -> str:
    return given or secrets.token_urlsafe(18)


def check_admin(request: Request, token: str) -> None:
    """Admin actions need `Authorization: Bearer TOKEN` (or `X-Admin-Token: TOKEN`)."""
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-admin-token", "")
    if not given:
        raise HTTPException(401, "admin action: send the admin token printed at start as 'Authorization: Bearer "
                                 "TOKEN'", headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(403, "admin action: wrong admin token")


def allowed_model_dirs(config) -> list[Path]:
    """Folders a model may be switched to from: DATA/models, the built-in model's folder, --allow-models."""
    from ..io.registry import default_model_path

    return [Path(config.data_dir) / "models", default_model_path().parent,
            *(Path(p) for p in config.allowed_model_dirs)]


def check_model_path(text: str, allowed: list[Path]) -> Path:
    """Resolve a model path and make sure it lies inside one of the allowed folders (symlinks resolved)."""
    try:
        path = Path(text).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        raise HTTPException(400, f"model path {text!r} cannot be resolved") from None
    roots = [r.resolve() for r in allowed]
    if not any(path == r or r in path.parents for r in roots):
        raise HTTPException(403, f"model path {text!r} is outside the allowed folders "
                                 f"({', '.join(str(r) for r in roots)})")
    if not path.exists():
        raise HTTPException(404, f"model path {text!r} does not exist")
    return path

"""Pure ASGI middleware of the studio server: a size limit on every request body, and CORS for the RunwayML
endpoints. Pure ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task group and a memory stream
per request; at hundreds of /query requests a second that is CPU the model needs."""

from __future__ import annotations

import json

RUNWAY_PATHS = frozenset({"/query", "/info", "/data", "/error"})
CORS_HEADERS = [(b"access-control-allow-origin", b"*"), (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", b"Content-Type")]
NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


async def _respond(send, status: int, detail: str | None, extra_headers=()) -> None:
    body = json.dumps({"detail": detail}).encode() if detail is not None else b""
    headers = [(b"content-length", str(len(body)).encode()), *extra_headers]
    if detail is not None:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ServerMiddleware:
    """`max_body` bounds every request body (JSON bodies are read whole by FastAPI, so an unbounded one would
    sit in memory); paths in `streamed_paths` (image uploads) read their own bodies with their own limit.
    A body over the limit is refused with 413 as soon as it passes the limit, chunked or not."""

    def __init__(self, app, max_body: int, streamed_paths: frozenset[str] = frozenset()):
        self.app = app
        self.max_body = int(max_body)
        self.streamed_paths = streamed_paths

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if path in RUNWAY_PATHS:
            if method == "OPTIONS":  # the CORS preflight, answered here
                return await _respond(send, 204, None, CORS_HEADERS)
            send = _with_cors(send)
        if method not in NO_BODY and path not in self.streamed_paths:
            receive = await self._buffer(scope, receive, send)
            if receive is None:
                return None
        return await self.app(scope, receive, send)

    async def _buffer(self, scope, receive, send):
        """Read the body up to the limit; None once a 413 has been sent, else a receive that replays it."""
        limit = self.max_body
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _respond(send, 413, f"request body is {int(declared)} bytes; the limit is {limit} bytes")
            return None
        messages, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                messages.append(message)
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _respond(send, 413, f"request body passes the limit of {limit} bytes")
                return None
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return replay


def _with_cors(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *CORS_HEADERS]}
        await send(message)

    return wrapped

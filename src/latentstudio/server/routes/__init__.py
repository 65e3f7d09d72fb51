"""HTTP routes, one module per concern; every handler reaches the server state through `studio(request)`."""

from __future__ import annotations

from fastapi import Request


def studio(request: Request):
    return request.app.state.studio

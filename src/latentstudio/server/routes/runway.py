"""RunwayML-compatible endpoints: sketches written for RunwayML's local StyleGAN server (Localhost Network API:
GET /info, POST /query, GET /data, GET /error) work unchanged against latentstudio."""

from __future__ import annotations

import time

import torch
from fastapi import APIRouter, Request

from ..engine import GenItem, adapt_z, data_url
from ..safety import client_id
from ..schemas import MAX_TRUNCATION, QueryBody
from . import studio

router = APIRouter(tags=["runwayml"])


def info_spec(engine) -> dict:
    """Inputs and outputs in the shape RunwayML's model SDK described them (`vector`, `number`, `image`)."""
    d = engine.describe()
    return {
        "inputs": [
            {"type": "vector", "name": "z", "description": f"latent vector; {d['z_dim']} values are used (longer "
             "vectors are cut, shorter ones padded with 0)", "length": d["z_dim"], "samplingMean": 0.0,
             "samplingStd": 1.0},
            {"type": "number", "name": "truncation", "description": "truncation psi (1 = none, "
             "0 = the mean face, above 1 exaggerates)", "default": 0.8,
             "min": 0.0, "max": MAX_TRUNCATION, "step": 0.01},
        ],
        "outputs": [
            {"type": "image", "name": "image", "description": "generated image (JPEG data URL)",
             "channels": d["channels"], "width": d["resolution"], "height": d["resolution"],
             "defaultOutputFormat": "JPEG"},
        ],
        "model": {"name": "latentstudio", "resolution": d["resolution"], "z_dim": d["z_dim"]},
    }


@router.get("/info", summary="RunwayML: describe the model's inputs and outputs")
async def info(request: Request) -> dict:
    return info_spec(studio(request).engine)


@router.post("/query", summary="RunwayML: generate an image for z and truncation")
async def query(body: QueryBody, request: Request) -> dict:
    s = studio(request)
    s.limiter.check(client_id(request), "generate", s.config.generate_rate, s.config.generate_burst)
    z = torch.from_numpy(adapt_z(body.z, s.engine.G.z_dim))
    try:
        jpeg = await s.engine.render(GenItem(z=z, psi=body.truncation, quality=s.config.jpeg_quality))
    except Exception as exc:
        remember_error(request, f"generation failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        raise
    out = {"image": data_url(jpeg)}
    request.app.state.runway_last = out
    return out


def remember_error(request: Request, detail) -> None:
    """Keep the latest refusal or failure of /query for GET /error (the error handlers call this too)."""
    if request.url.path == "/query":
        request.app.state.runway_error = {"error": str(detail), "time": time.time()}


@router.get("/data", summary="RunwayML: the latest output")
async def data(request: Request) -> dict:
    return getattr(request.app.state, "runway_last", {})


@router.get("/error", summary="RunwayML: the latest error of /query ({\"error\": null} while there was none)")
async def error(request: Request) -> dict:
    return getattr(request.app.state, "runway_error", {"error": None, "time": None})

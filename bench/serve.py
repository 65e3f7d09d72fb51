"""Benchmark of `latentstudio serve`: /query latency (p50/p99) and images/s at 1, 8 and 32 concurrent clients,
with and without request batching, plus the frames/s a Wall screen receives.

    .venv/bin/python bench/serve.py                    # default model (untrained cpu128 until one is installed)
    .venv/bin/python bench/serve.py MODEL --clients 1,8,32 --seconds 6 --wall-seconds 6

Targets on 2 CPU cores: p50 < 100 ms at 1 client; images/s at 32 clients >= 3x the 1-client images/s (with
batching); the wall holds >= 24 fps. Loopback only; every request loop is bounded by --seconds and
--max-requests; the servers it starts are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str | None, data: Path, batching: bool, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "latentstudio.cli", "serve", *([model] if model else []), "--data", str(data),
           "--port", str(port), "--log-level", "error", *extra]
    if not batching:
        cmd.append("--no-batching")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    import httpx

    end = time.monotonic() + 180
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(base + "/api/model", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not start within 180 s")


async def load(base: str, clients: int, seconds: float, max_requests: int, z_len: int = 512) -> dict:
    """`clients` concurrent loops of POST /query until `seconds` pass or `max_requests` were sent."""
    import httpx

    latencies: list[float] = []
    sent = 0
    rng = np.random.default_rng(0)
    # bodies made up front, so the client spends its CPU on requests rather than on making z
    bodies = [json.dumps({"z": rng.standard_normal(z_len).round(5).tolist(), "truncation": 0.8}).encode()
              for _ in range(64)]
    headers = {"content-type": "application/json"}
    deadline = time.perf_counter() + seconds

    async def worker(client):
        nonlocal sent
        while time.perf_counter() < deadline and sent < max_requests:
            sent += 1
            body = bodies[sent % len(bodies)]
            t = time.perf_counter()
            r = await client.post(base + "/query", content=body, headers=headers)
            r.raise_for_status()
            latencies.append(time.perf_counter() - t)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        await client.post(base + "/query", json={"z": [0.0] * z_len})  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(lat), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "images_per_s": len(lat) / wall}


async def wall_fps(base: str, seconds: float) -> float:
    import websockets

    frames = 0
    async with websockets.connect(base.replace("http", "ws") + "/api/wall/ws", max_size=2**24) as ws:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            msg = await asyncio.wait_for(ws.recv(), timeout=30)
            if isinstance(msg, bytes):
                if frames == 0:
                    start = time.perf_counter()  # count from the first frame (the walk is built first)
                frames += 1
        return (frames - 1) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", default=None, help="model directory (default: the built-in model)")
    ap.add_argument("--clients", default="1,8,32", help="concurrency levels")
    ap.add_argument("--seconds", type=float, default=6.0, help="time per concurrency level")
    ap.add_argument("--max-requests", type=int, default=2000, help="request cap per concurrency level")
    ap.add_argument("--wall-seconds", type=float, default=6.0, help="time the wall stream is measured")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    results = {"cpu_count": os.cpu_count(), "load_avg": os.getloadavg(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        try:
            for batching in (True, False):
                servers[batching] = start_server(args.model, Path(tmp) / f"data-{batching}", batching, [])
            for clients in levels:  # the two servers take turns, so both see the same (shared) machine
                for batching in (True, False):
                    r = asyncio.run(load(servers[batching][1], clients, args.seconds, args.max_requests))
                    r["batching"] = batching
                    results["runs"].append(r)
                    print(f"  batching={batching!s:5} clients={clients:3d} {r['images_per_s']:7.1f} img/s", flush=True)
            results["wall_fps"] = asyncio.run(wall_fps(servers[True][1], args.wall_seconds))
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(30)
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_table(results: dict) -> None:
    print(f"\n/query on {results['cpu_count']} CPU cores (load average at start {results['load_avg'][0]:.1f})")
    print(f"{'batching':>8} {'clients':>7} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'img/s':>7} {'x 1 client':>10}")
    for batching in (True, False):
        runs = [r for r in results["runs"] if r["batching"] == batching]
        one = next((r["images_per_s"] for r in runs if r["clients"] == 1), None)
        for r in runs:
            ratio = f"{r['images_per_s'] / one:.2f}" if one else "-"
            print(f"{'on' if batching else 'off':>8} {r['clients']:7d} {r['requests']:8d} {r['p50_ms']:8.1f} "
                  f"{r['p99_ms']:8.1f} {r['images_per_s']:7.1f} {ratio:>10}")
    print(f"wall: {results.get('wall_fps', float('nan')):.1f} frames/s (target 24)")


if __name__ == "__main__":
    sys.exit(main())

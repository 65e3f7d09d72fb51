"""Benchmark of `latentstudio serve`: /query latency (p50/p99) and images/s at 1, 8 and 32 concurrent clients,
with and without request batching, plus the new frames/s a Wall screen receives on one and on three screens.

    .venv/bin/python bench/serve.py                       # the built-in default model, full run (~3 min)
    .venv/bin/python bench/serve.py --quick               # < 2 min: shorter levels
    .venv/bin/python bench/serve.py --model DIR --cpus 2  # another model; pin servers and clients to 2 CPUs
    .venv/bin/python bench/serve.py --serve-args "--threads 2"   # compare a server setting

Targets on 2 CPU cores: p50 < 100 ms at 1 client; images/s at 32 clients >= 3x the 1-client images/s (with
batching); the wall holds >= 24 fps, on one screen and on each of three. Each is printed with PASS or FAIL, and the
exit status is 1 if any fails. Ratios compare rows measured in the same run, with the two servers taking turns
level by level so both see the same machine. The wall counts new frames: a screen whose due frame is not rendered
yet is sent the newest rendered one again, and such repeats are shown (messages/s) but not counted.

The clients are plain asyncio sockets speaking HTTP/1.1 keep-alive with request bytes made up front: they run on
the same cores as the server, and a full HTTP client library would spend more CPU per request than the server
does, measuring itself. Loopback only; every loop is bounded by --seconds and --max-requests; the servers it
starts are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_P50_MS = 100.0
TARGET_RATIO = 3.0
TARGET_WALL_FPS = 24


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_model(spec: str | None, tmp: Path) -> tuple[str, str]:
    """(model argument for serve, one line saying what it is)."""
    if spec:
        return spec, f"model: {spec}"
    from latentstudio.io.registry import default_model_path

    if (default_model_path() / "config.json").is_file():
        return str(default_model_path()), f"model: the built-in default model ({default_model_path()})"
    out = tmp / "random-cpu128"
    subprocess.run([sys.executable, "-m", "latentstudio.cli", "init-model", "--preset", "cpu128", "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return str(out), "model: the built-in default model is not installed; using a random-init cpu128 (same speed)"


def start_server(model: str, data: Path, batching: bool, cpus: list[int] | None,
                 extra: list[str] = ()) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = [sys.executable, "-m", "latentstudio.cli", "serve", model, "--data", str(data), "--port", str(port),
           "--log-level", "error", *([] if batching else ["--no-batching"]), *extra]
    if cpus:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            status, _ = asyncio.run(_one(port, _request(port, "GET", "/api/health")))
            if status == 200:
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not start within 180 s")


def _request(port: int, method: str, path: str, body: bytes = b"") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


async def _exchange(reader, writer, raw: bytes) -> tuple[int, bytes]:
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line[15:]) for line in head.split(b"\r\n") if line[:15].lower() == b"content-length:"), 0)
    return int(head.split(b" ", 2)[1]), await reader.readexactly(length)


async def _one(port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await _exchange(reader, writer, raw)
    finally:
        writer.close()


def query_bodies(port: int, n: int = 256, z_len: int = 512) -> list[bytes]:
    """RunwayML-style /query requests (512 values, as the sketches send), all different."""
    rng = np.random.default_rng(0)
    return [_request(port, "POST", "/query", json.dumps({"z": rng.standard_normal(z_len).round(5).tolist(),
                                                         "truncation": 0.8}).encode()) for _ in range(n)]


async def load(port: int, clients: int, seconds: float, max_requests: int, bodies: list[bytes]) -> dict:
    """`clients` concurrent keep-alive connections sending /query until `seconds` pass or `max_requests` were sent."""
    latencies: list[float] = []
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker():
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                t = time.perf_counter()
                status, _ = await _exchange(reader, writer, bodies[sent % len(bodies)])
                if status != 200:
                    raise SystemExit(f"/query answered {status}")
                latencies.append(time.perf_counter() - t)
        finally:
            writer.close()

    await _one(port, bodies[0])  # warm-up
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"clients": clients, "requests": len(lat), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "images_per_s": len(lat) / elapsed}


async def _wall_frames_rendered(port: int) -> int:
    status, body = await _one(port, _request(port, "GET", "/api/stats"))
    if status != 200:
        raise SystemExit(f"/api/stats answered {status}")
    return int(json.loads(body)["wall_frames_rendered"])


async def wall_fps(port: int, seconds: float, fps: int, screens: int = 1) -> dict:
    """What one wall screen gets per second (the mean over `screens` screens of one wall, all streaming at once),
    over one window that starts once every screen has its first frame (the walk is built first):

    - messages_per_s: JPEG messages received. When a due frame is not rendered yet the server sends its newest
      rendered one again, so this counts repeats too;
    - new_frames_per_s: messages that differ from the one before on that screen: the frames that move the
      picture on (the target is checked on these);
    - rendered_per_s: the server's side, the change of /api/stats `wall_frames_rendered` over the window divided
      by `screens` (rendering runs a batch or two ahead, so this is within a couple of batches of the truth).
    """
    import websockets

    window = {"on": False, "done": False}
    counts = [[0, 0] for _ in range(screens)]  # per screen in the window: messages, new frames
    first = [asyncio.Event() for _ in range(screens)]

    async def screen(i: int) -> None:
        url = f"ws://127.0.0.1:{port}/api/wall/ws?screen={i}&of={screens}&fps={fps}"
        async with websockets.connect(url, max_size=2**24) as ws:
            last = None
            while not window["done"]:
                msg = await asyncio.wait_for(ws.recv(), timeout=60)
                if not isinstance(msg, bytes):
                    continue
                first[i].set()
                if window["on"]:
                    counts[i][0] += 1
                    counts[i][1] += msg != last
                last = msg

    tasks = [asyncio.ensure_future(screen(i)) for i in range(screens)]
    try:
        ready = asyncio.ensure_future(asyncio.gather(*(e.wait() for e in first)))
        await asyncio.wait([ready, *tasks], timeout=180, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():  # a screen failed, or some screen had no frame within 180 s
            ready.cancel()
            for t in tasks:
                if t.done():
                    t.result()  # that screen's own error (a refused stream, a closed socket)
            raise SystemExit("the wall sent no frame within 180 s")
        before = await _wall_frames_rendered(port)
        window["on"], start = True, time.perf_counter()
        await asyncio.sleep(seconds)
        window["on"], elapsed = False, time.perf_counter() - start
        after = await _wall_frames_rendered(port)
        window["done"] = True
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
    return {"screens": screens, "seconds": elapsed,
            "messages_per_s": float(np.mean([c[0] for c in counts])) / elapsed,
            "new_frames_per_s": float(np.mean([c[1] for c in counts])) / elapsed,
            "rendered_per_s": (after - before) / screens / elapsed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model directory (default: the built-in model)")
    ap.add_argument("--quick", action="store_true", help="short levels (the whole run in under 2 minutes)")
    ap.add_argument("--clients", default="1,8,32", help="concurrency levels")
    ap.add_argument("--seconds", type=float, default=None, help="time per level (default 8, quick 2.5)")
    ap.add_argument("--max-requests", type=int, default=5000, help="request cap per level")
    ap.add_argument("--wall-seconds", type=float, default=None, help="time the wall is measured (default 8, quick 4)")
    ap.add_argument("--cpus", type=int, default=0, help="pin the servers and this client to the first N CPUs")
    ap.add_argument("--serve-args", default="", help="more `latentstudio serve` options, e.g. '--threads 2'")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    seconds = args.seconds or (2.5 if args.quick else 8.0)
    wall_seconds = args.wall_seconds or (4.0 if args.quick else 8.0)
    cpus = sorted(os.sched_getaffinity(0))[:args.cpus] if args.cpus else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        model, model_line = pick_model(args.model, Path(tmp))
        print(model_line, flush=True)
        results = {"cpu_count": len(os.sched_getaffinity(0)), "load_avg": os.getloadavg(), "model": model_line,
                   "runs": []}
        servers = {}
        try:
            for batching in (True, False):
                servers[batching] = start_server(model, Path(tmp) / f"data-{batching}", batching, cpus,
                                                 shlex.split(args.serve_args))
            bodies = {b: query_bodies(port) for b, (_, port) in servers.items()}
            for clients in levels:  # the two servers take turns, so both see the same (shared) machine
                for batching in (True, False):
                    port = servers[batching][1]
                    r = asyncio.run(load(port, clients, seconds, args.max_requests, bodies[batching]))
                    results["runs"].append({**r, "batching": batching})
                    print(f"  batching={batching!s:5} clients={clients:3d} {r['images_per_s']:7.1f} img/s", flush=True)
            port = servers[True][1]
            results["wall"] = [asyncio.run(wall_fps(port, wall_seconds, TARGET_WALL_FPS, screens=n)) for n in (1, 3)]
            results["wall_fps"] = results["wall"][0]["new_frames_per_s"]  # per screen, repeats not counted
            results["wall_fps_3_screens"] = results["wall"][1]["new_frames_per_s"]
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(30)
    ok = print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


def print_table(results: dict) -> bool:
    print(f"\n/query on {results['cpu_count']} CPU cores (load average at start {results['load_avg'][0]:.1f}); "
          f"{results['model']}")
    print(f"{'batching':>8} {'clients':>7} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'img/s':>7} {'x 1 client':>10}")
    ratios = {}
    for batching in (True, False):
        runs = [r for r in results["runs"] if r["batching"] == batching]
        one = next((r["images_per_s"] for r in runs if r["clients"] == 1), None)
        for r in runs:
            ratio = r["images_per_s"] / one if one else float("nan")
            ratios[(batching, r["clients"])] = ratio
            print(f"{'on' if batching else 'off':>8} {r['clients']:7d} {r['requests']:8d} {r['p50_ms']:8.1f} "
                  f"{r['p99_ms']:8.1f} {r['images_per_s']:7.1f} {ratio:10.2f}")
    p50 = next((r["p50_ms"] for r in results["runs"] if r["batching"] and r["clients"] == 1), float("nan"))
    top = max((c for b, c in ratios if b), default=1)
    checks = [(f"p50 at 1 client < {TARGET_P50_MS:.0f} ms", p50 < TARGET_P50_MS, f"{p50:.1f} ms"),
              (f"img/s at {top} clients >= {TARGET_RATIO:.0f}x 1 client (batching)",
               ratios.get((True, top), 0) >= TARGET_RATIO, f"{ratios.get((True, top), float('nan')):.2f}x")]
    print(f"\nwall, per screen ({TARGET_WALL_FPS} fps requested; messages include repeats of the newest rendered "
          "frame when the due one is not ready, new frames do not; rendered: /api/stats over the same window)")
    print(f"{'screens':>7} {'messages/s':>10} {'new frames/s':>12} {'rendered/s':>10}")
    for w in results["wall"]:
        new = w["new_frames_per_s"]
        print(f"{w['screens']:7d} {w['messages_per_s']:10.1f} {new:12.1f} {w['rendered_per_s']:10.1f}")
        # the stream is paced at 24 fps; 2% below is timer jitter, not a dropped frame a second
        checks.append((f"wall holds >= {TARGET_WALL_FPS} fps ({w['screens']} screen{'s' if w['screens'] > 1 else ''})",
                       new >= 0.98 * TARGET_WALL_FPS, f"{new:.1f} new frames/s"))
    for name, passed, value in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {value}")
    return all(passed for _, passed, _ in checks)


if __name__ == "__main__":
    sys.exit(main())

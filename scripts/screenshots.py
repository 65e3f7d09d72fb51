"""Regenerate the page screenshots in docs/images (Debian chromium via Playwright, a server on loopback).

    .venv/bin/python scripts/screenshots.py [MODEL]      # default: the built-in model
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> int:
    model = sys.argv[1:2]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen([sys.executable, "-m", "latentstudio.cli", "serve", *model, "--data", data, "--port",
                                 str(port), "--project-seconds", "2"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    httpx.get(base + "/api/model", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                take(browser, base)
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"wrote screenshots to {OUT}")
    return 0


def take(browser, base: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    draw = browser.new_page(viewport={"width": 720, "height": 820})
    draw.goto(base + "/draw")
    box = draw.locator("#drawing").bounding_box()
    cx, cy, r = box["width"] / 2, box["height"] / 2, box["width"] / 3
    face = [[(cx + r * __import__("math").cos(a / 20 * 6.283), cy + r * __import__("math").sin(a / 20 * 6.283))
             for a in range(21)],
            [(cx - r / 2.5, cy - r / 3), (cx - r / 2.5 + 2, cy - r / 3 + 2)],
            [(cx + r / 2.5, cy - r / 3), (cx + r / 2.5 + 2, cy - r / 3 + 2)],
            [(cx - r / 2, cy + r / 4), (cx - r / 4, cy + r / 2), (cx + r / 4, cy + r / 2), (cx + r / 2, cy + r / 4)]]
    for i, stroke in enumerate(face):
        if i == 3:
            draw.click("button.swatch >> nth=1")
        draw.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        draw.mouse.down()
        for x, y in stroke[1:]:
            draw.mouse.move(box["x"] + x, box["y"] + y, steps=3)
        draw.mouse.up()
    draw.screenshot(path=str(OUT / "draw.png"))
    draw.click("#submit")
    draw.wait_for_selector("text=your drawing is joining the wall")
    draw.screenshot(path=str(OUT / "draw-joining.png"))
    draw.wait_for_selector("text=your drawing is on the wall now", timeout=120_000)
    studio = browser.new_page(viewport={"width": 1200, "height": 1000})
    studio.goto(base + "/studio")
    studio.wait_for_function("[...document.querySelectorAll('#seed-grid img')].every(i => i.complete && "
                             "i.naturalWidth)", timeout=120_000)
    studio.click("#seed-grid .cell >> nth=5")
    studio.wait_for_function("document.querySelectorAll('#neighbours img').length == 8", timeout=120_000)
    studio.click("#add-key")
    studio.click("#neighbours .cell >> nth=2")
    studio.click("#add-key")
    studio.click("#preview")
    studio.wait_for_function("window.studio.frame !== null", timeout=60_000)
    studio.screenshot(path=str(OUT / "studio.png"))
    wall = browser.new_page(viewport={"width": 960, "height": 540})
    wall.goto(base + "/wall")
    wall.wait_for_function("window.wallStats && wallStats.frames > 2", timeout=60_000)
    wall.screenshot(path=str(OUT / "wall.png"))


if __name__ == "__main__":
    sys.exit(main())

// Wall page: full-screen frames of the server's walk through the gallery. The server picks each frame from its
// clock, so screens opened with ?screen=i&of=n stay in step with each other.
"use strict";

const params = new URLSearchParams(location.search);
const screenIndex = Math.max(0, Number(params.get("screen") || 0));
const screenCount = Math.max(1, Number(params.get("of") || 1));
const fit = params.get("fit") === "cover" ? "cover" : "contain";  // ?fit=cover fills the screen, cropping
const wall = { bitmap: null, frames: 0, members: [], started: performance.now(), shownAt: 0 };
window.wallStats = wall;  // read by the browser tests and the benchmark

function setup() {
  createCanvas(windowWidth, windowHeight);
  frameRate(60);
  const fps = params.get("fps") ? `&fps=${Number(params.get("fps"))}` : "";
  frameSocket(`/api/wall/ws?screen=${screenIndex}&of=${screenCount}${fps}`, {
    onFrame: (bitmap) => {
      if (wall.bitmap) wall.bitmap.close();
      wall.bitmap = bitmap;
      wall.frames += 1;
    },
    onMessage: (msg) => {
      if (msg.type !== "wall") return;
      const joined = msg.members.filter((m) => !wall.members.includes(m) && !m.startsWith("seed"));
      if (wall.members.length && joined.length) caption("a new drawing joined the wall");
      wall.members = msg.members;
    },
  });
}

function draw() {
  if (!wall.bitmap) { background(0); return; }
  if (wall.shownAt === wall.frames) return;  // nothing new to paint
  wall.shownAt = wall.frames;
  drawCover(drawingContext, wall.bitmap, width, height, fit);
}

function windowResized() { resizeCanvas(windowWidth, windowHeight); wall.shownAt = -1; }

function caption(text) {
  const c = document.getElementById("caption");
  c.textContent = text;
  c.classList.add("show");
  setTimeout(() => c.classList.remove("show"), 4000);
}

// Draw page: a touch-friendly p5 canvas. Strokes are kept as data, so undo and clear just redraw them.
"use strict";

const COLOURS = ["#111111", "#e63946", "#f4a261", "#2a9d8f", "#457b9d", "#8338ec"];
const BACKGROUND = "#ffffff";
const page = { strokes: [], current: null, size: 10, colour: COLOURS[0], eraser: false, busy: false };

function canvasSize() {
  return Math.max(240, Math.min(window.innerWidth - 24, window.innerHeight - 220, 720));
}

function setup() {
  pixelDensity(1);  // the upload is the canvas as seen; keep it small
  const c = createCanvas(canvasSize(), canvasSize());
  c.parent("canvas-holder");
  c.id("drawing");
  noLoop();
  redrawAll();
  const node = c.elt;
  node.addEventListener("pointerdown", startStroke);
  node.addEventListener("pointermove", moveStroke);
  window.addEventListener("pointerup", endStroke);
  node.addEventListener("pointercancel", endStroke);
  buildTools();
}

function draw() { /* everything is drawn from pointer events */ }

function pointerPos(ev) {
  const r = ev.target.getBoundingClientRect();
  return [(ev.clientX - r.left) * (width / r.width), (ev.clientY - r.top) * (height / r.height)];
}

function startStroke(ev) {
  if (page.busy) return;
  ev.preventDefault();
  ev.target.setPointerCapture && ev.target.setPointerCapture(ev.pointerId);
  page.current = { colour: page.eraser ? BACKGROUND : page.colour, size: page.eraser ? page.size * 2 : page.size,
                   points: [pointerPos(ev)] };
  page.strokes.push(page.current);
  paintStroke(page.current, 0);
}

function moveStroke(ev) {
  if (!page.current) return;
  ev.preventDefault();
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of events.length ? events : [ev]) page.current.points.push(pointerPos(e));
  paintStroke(page.current, Math.max(0, page.current.points.length - events.length - 1));
}

function endStroke() { page.current = null; }

function paintStroke(s, from) {
  stroke(s.colour);
  strokeWeight(s.size);
  strokeCap(ROUND);
  strokeJoin(ROUND);
  const p = s.points;
  if (p.length === 1) { dot(p[0], s); return; }
  for (let i = Math.max(1, from); i < p.length; i++) line(p[i - 1][0], p[i - 1][1], p[i][0], p[i][1]);
}

function dot(p, s) { noStroke(); fill(s.colour); circle(p[0], p[1], s.size); }

function redrawAll() {
  background(BACKGROUND);
  for (const s of page.strokes) {
    paintStroke(s, 1);
  }
}

function buildTools() {
  const holder = document.getElementById("colours");
  for (const c of COLOURS) {
    const b = el("button", { class: "swatch" + (c === page.colour ? " active" : ""), style: `background:${c}`,
                             "data-colour": c, "aria-label": `colour ${c}` });
    b.addEventListener("click", () => { page.colour = c; page.eraser = false; refreshTools(); });
    holder.append(b);
  }
  document.querySelectorAll("button.size").forEach((b) => b.addEventListener("click", () => {
    page.size = Number(b.dataset.size); refreshTools();
  }));
  document.getElementById("eraser").addEventListener("click", () => { page.eraser = !page.eraser; refreshTools(); });
  document.getElementById("undo").addEventListener("click", () => { page.strokes.pop(); redrawAll(); });
  document.getElementById("clear").addEventListener("click", () => { page.strokes = []; redrawAll(); });
  document.getElementById("submit").addEventListener("click", submitDrawing);
  document.getElementById("again").addEventListener("click", reset);
}

function refreshTools() {
  document.querySelectorAll("button.size").forEach((b) => b.classList.toggle("active",
    Number(b.dataset.size) === page.size));
  document.querySelectorAll("button.swatch").forEach((b) => b.classList.toggle("active",
    !page.eraser && b.dataset.colour === page.colour));
  document.getElementById("eraser").classList.toggle("active", page.eraser);
}

function overlay(text, { spinner = true, image = null, again = false } = {}) {
  document.getElementById("overlay").classList.add("show");
  document.getElementById("overlay-text").textContent = text;
  document.getElementById("spinner").style.display = spinner ? "" : "none";
  const img = document.getElementById("result");
  img.style.display = image ? "" : "none";
  if (image) img.src = image;
  document.getElementById("again").style.display = again ? "" : "none";
}

async function submitDrawing() {
  const msg = document.getElementById("message");
  if (!page.strokes.length) { msg.textContent = "draw something first"; return; }
  page.busy = true;
  overlay("your drawing is joining the wall");
  try {
    const blob = await new Promise((resolve) => document.getElementById("drawing").toBlob(resolve, "image/png"));
    const res = await fetch("/api/drawings", { method: "POST", headers: { "content-type": "image/png" }, body: blob });
    const sent = await res.json();
    if (!res.ok) throw new Error(sent.detail || res.statusText);
    window.lastDrawing = sent.id;
    let status = sent;
    for (let i = 0; i < 600 && !["done", "failed"].includes(status.status); i++) {
      await sleep(500);
      status = await api(`/api/drawings/${sent.id}`);
    }
    if (status.status !== "done") throw new Error(status.error || "projection did not finish");
    const gen = await api("/api/generate", { keys: [{ drawing: sent.id }] });
    overlay("your drawing is on the wall now", { spinner: false, image: gen.images[0], again: true });
  } catch (err) {
    overlay(`sorry, that did not work: ${err.message}`, { spinner: false, again: true });
  }
}

function reset() {
  page.strokes = [];
  page.busy = false;
  redrawAll();
  document.getElementById("overlay").classList.remove("show");
}

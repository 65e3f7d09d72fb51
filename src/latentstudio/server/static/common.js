// Shared helpers of the latentstudio pages (no framework; p5 is loaded locally from /vendor/p5.min.js).
"use strict";

async function api(path, body, method) {
  const opts = body === undefined ? { method: method || "GET" }
    : { method: method || "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.detail || `${res.status} ${res.statusText}`);
  return data;
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// A stream of JPEG frames over a WebSocket; onFrame gets an ImageBitmap, onMessage the JSON messages.
function frameSocket(path, { onFrame, onMessage, onOpen, reconnect = true }) {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
  const state = { socket: null, closed: false, frames: 0 };
  const open = () => {
    const ws = new WebSocket(url);
    ws.binaryType = "blob";
    state.socket = ws;
    ws.onopen = () => onOpen && onOpen(ws);
    ws.onmessage = async (ev) => {
      if (typeof ev.data === "string") { onMessage && onMessage(JSON.parse(ev.data)); return; }
      const bitmap = await createImageBitmap(ev.data);
      state.frames += 1;
      onFrame(bitmap);
    };
    ws.onclose = () => { if (reconnect && !state.closed) setTimeout(open, 1000); };
  };
  open();
  state.close = () => { state.closed = true; state.socket && state.socket.close(); };
  state.send = (obj) => state.socket && state.socket.readyState === 1 && state.socket.send(JSON.stringify(obj));
  return state;
}

// Draw a bitmap into a w x h area: "contain" shows all of it (black bars), "cover" fills the area (centre crop).
function drawCover(ctx, bitmap, w, h, fit = "cover") {
  const s = fit === "contain" ? Math.min(w / bitmap.width, h / bitmap.height)
    : Math.max(w / bitmap.width, h / bitmap.height);
  if (fit === "contain") { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, w, h); }
  const dw = bitmap.width * s, dh = bitmap.height * s;
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, (w - dw) / 2, (h - dh) / 2, dw, dh);
}

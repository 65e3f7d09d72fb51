// Studio page: seed grid -> neighbours -> keys -> live preview (WebSocket frames) -> rendered MP4.
"use strict";

const PER_PAGE = 16;
const st = { page: 0, trunc: 0.7, selected: null, keys: [], noiseSeed: 0, stream: null, frame: null,
             neighboursOf: null, galleryVersion: null, modelTag: "" };
const GALLERY_POLL_MS = 4000;  // new drawings show up in the gallery panel without a reload
window.studio = st;  // read by the browser tests
const $ = (id) => document.getElementById(id);

function keyLabel(key) {
  if (key.seed !== undefined) return `seed ${key.seed}`;
  if (key.drawing) return `drawing ${key.drawing.slice(0, 6)}`;
  if (key.of) return `${keyLabel(key.of)} › ${key.index + 1}`;
  return "latent";
}

function cell(src, label, onclick) {
  const c = el("div", { class: "cell" }, el("img", { src, alt: label }), el("span", {}, label));
  c.addEventListener("click", () => onclick(c));
  return c;
}

function renderGrid() {
  const grid = $("seed-grid");
  grid.replaceChildren();
  const first = st.page * PER_PAGE;
  $("page-label").textContent = `seeds ${first}–${first + PER_PAGE - 1}`;
  for (let s = first; s < first + PER_PAGE; s++) {
    // the model's tag in the URL: the browser may cache the image, and a model switch gives new URLs
    grid.append(cell(`/api/image?seed=${s}&truncation=${st.trunc}&model=${st.modelTag}`, String(s),
      (c) => select({ seed: s, truncation: st.trunc }, c)));
  }
}

async function renderGallery() {
  let data;
  try { data = await api("/api/gallery"); } catch (err) { return; }  // a restart: the next poll will do
  if (data.model !== st.modelTag) {  // an admin switched the model (or the server restarted): new images
    st.modelTag = data.model;
    renderGrid();
  }
  if (data.version === st.galleryVersion) return;
  st.galleryVersion = data.version;
  const holder = $("gallery");
  holder.replaceChildren();
  if (!data.entries.length) holder.append(el("span", { class: "muted" }, "no drawings yet — open /draw"));
  for (const e of data.entries.slice(-8)) holder.append(cell(e.image, "drawing", (c) => select(e.key, c)));
}

function select(key, node) {
  document.querySelectorAll(".cell.selected").forEach((n) => n.classList.remove("selected"));
  if (node) node.classList.add("selected");
  st.selected = key;
  $("selected-label").textContent = keyLabel(key);
  $("add-key").disabled = false;
  loadNeighbours();
}

// A neighbour: the first click picks it (for "add key"), a second click opens its own neighbours, and so on.
function pickNeighbour(key, node) {
  if (node.classList.contains("selected")) { select(key, null); return; }
  document.querySelectorAll("#neighbours .cell.selected").forEach((n) => n.classList.remove("selected"));
  node.classList.add("selected");
  st.selected = key;
  $("selected-label").textContent = keyLabel(key);
}

async function loadNeighbours() {
  if (!st.selected) return;
  const holder = $("neighbours");
  const parent = st.selected;
  const strength = Number($("strength").value);
  try {
    const data = await api("/api/neighbours", { key: parent, count: 8, strength, seed: st.noiseSeed });
    holder.replaceChildren();
    data.images.forEach((src, i) => holder.append(cell(src, String(i + 1), (c) => pickNeighbour(data.keys[i], c))));
    st.neighboursOf = parent;
  } catch (err) { holder.replaceChildren(el("span", { class: "error" }, err.message)); }
}

async function addKey() {
  if (!st.selected) return;
  const key = st.selected;
  const status = $("render-status");
  let data;
  try {
    data = await api("/api/generate", { keys: [key] });
  } catch (err) {
    status.textContent = `could not add the key: ${err.message}`;
    return;
  }
  status.textContent = "";
  st.keys.push(key);
  const holder = $("keys");
  if (st.keys.length === 1) holder.replaceChildren();
  const node = cell(data.images[0], String(st.keys.length), () => {
    const i = [...holder.children].indexOf(node);
    st.keys.splice(i, 1);
    node.remove();
  });
  node.title = "click to remove";
  holder.append(node);
}

function walkSpec(cyclic) {
  return { keys: st.keys.length ? st.keys : (st.selected ? [st.selected] : [{ seed: 0 }]),
           mode: $("mode").value, frames: Number($("frames").value), fps: Number($("fps").value), cyclic };
}

function preview() {
  stopPreview();
  st.stream = frameSocket("/api/walk/ws", {
    reconnect: false,
    onOpen: () => st.stream.send(walkSpec(true)),
    onFrame: (bitmap) => { if (st.frame) st.frame.close(); st.frame = bitmap; },
    onMessage: (msg) => { if (msg.type === "error") $("render-status").textContent = msg.detail; },
  });
}

function stopPreview() { if (st.stream) st.stream.close(); st.stream = null; }

async function renderVideo() {
  const out = $("render-status");
  try {
    const job = await api("/api/render", walkSpec(false));
    let status = { status: "queued", progress: 0 };
    while (!["done", "failed"].includes(status.status)) {
      out.textContent = `rendering… ${Math.round(100 * (status.progress || 0))}%`;
      await sleep(400);
      status = await api(`/api/jobs/${job.job}`);
    }
    if (status.status === "failed") throw new Error(status.error);
    out.replaceChildren(el("a", { href: status.result.video, download: "latentstudio.mp4", id: "download" },
      `download the video (${status.result.frames} frames)`));
  } catch (err) { out.textContent = `render failed: ${err.message}`; }
}

new p5((p) => {  // the preview canvas
  p.setup = () => { p.pixelDensity(1); p.createCanvas(384, 384).parent("preview-holder"); p.background(0); };
  p.draw = () => { if (st.frame) drawCover(p.drawingContext, st.frame, p.width, p.height); };
});

async function init() {
  const info = await api("/api/model");
  st.trunc = info.truncation;
  st.modelTag = info.model.tag;
  $("trunc").value = st.trunc;
  $("trunc-value").textContent = st.trunc.toFixed(2);
  $("model").textContent = `${info.model.resolution}px model`;
  $("trunc").addEventListener("change", () => { st.trunc = Number($("trunc").value); renderGrid(); });
  $("trunc").addEventListener("input", () => { $("trunc-value").textContent = Number($("trunc").value).toFixed(2); });
  $("prev").addEventListener("click", () => { st.page = Math.max(0, st.page - 1); renderGrid(); });
  $("next").addEventListener("click", () => { st.page += 1; renderGrid(); });
  $("strength").addEventListener("change", loadNeighbours);
  $("more").addEventListener("click", () => { st.noiseSeed += 1; loadNeighbours(); });
  $("add-key").addEventListener("click", addKey);
  $("preview").addEventListener("click", preview);
  $("stop").addEventListener("click", stopPreview);
  $("render").addEventListener("click", renderVideo);
  renderGrid();
  renderGallery();
  setInterval(renderGallery, GALLERY_POLL_MS);
}

init();

// The school installation's latent spacewalk, written against RunwayML's StyleGAN HTTP interface:
//   POST {server}/query  {"z": [512 numbers], "truncation": 0.8}  ->  {"image": "data:image/jpeg;base64,..."}
// It runs unchanged against `latentstudio serve` (same origin by default, or ?server=http://host:port) and against
// any other RunwayML-style endpoint. Each of the 512 values of z drifts along its own path through 2-D simplex
// noise, so consecutive images are close and the face keeps turning into similar faces.
import { createNoise2D } from "/vendor/simplex-noise.js";

const params = new URLSearchParams(location.search);
const SERVER = params.get("server") || location.origin;
const Z_LENGTH = 512;         // what RunwayML's StyleGAN expected; latentstudio adapts it to its model
const TRUNCATION = Number(params.get("truncation") || 0.8);
const SPEED = Number(params.get("speed") || 0.01);   // how fast the walk moves through noise space
const SPREAD = 10.0;          // distance between the paths of neighbouring z values
const IN_FLIGHT = 2;          // requests kept open at once, so the next frame is on its way while one shows

const noise2D = createNoise2D();
// `shown` is the sequence number of the image on screen: with two requests in flight a reply can overtake an
// earlier one, and showing the late one after it would make the walk flick back a step.
// `error` is the last failed request's message (and `errorAt` when, in ms): draw() keeps showing it.
const walk = { t: 0, image: null, frames: 0, sent: 0, shown: 0, stale: 0, started: 0, error: null, errorAt: 0 };
window.spacewalk = walk;

function nextZ() {
  walk.t += SPEED;
  const z = new Array(Z_LENGTH);
  for (let i = 0; i < Z_LENGTH; i++) z[i] = 1.5 * noise2D(i * SPREAD, walk.t);  // roughly unit variance
  return z;
}

function show(seq, img) {
  if (seq < walk.shown) { walk.stale += 1; return; }  // an older step than the one on screen: drop it
  walk.shown = seq;
  walk.image = img;
  walk.frames += 1;
}

async function query() {
  walk.sent += 1;
  const seq = walk.sent;
  try {
    const res = await fetch(`${SERVER}/query`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ z: nextZ(), truncation: TRUNCATION }),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(data.detail || res.statusText);
    loadImage(data.image, (img) => show(seq, img));
  } catch (err) {
    walk.error = err.message;
    walk.errorAt = millis();
    await new Promise((r) => setTimeout(r, 1000));
  }
  query();  // keep walking
}

window.setup = () => {
  createCanvas(windowWidth, windowHeight);
  imageMode(CENTER);
  walk.started = millis();
  for (let i = 0; i < IN_FLIGHT; i++) query();
};

window.draw = () => {
  background(0);
  if (walk.image) {
    const s = Math.min(width, height);
    image(walk.image, width / 2, height / 2, s, s);
  }
  const seconds = (millis() - walk.started) / 1000;
  let status = `${SERVER}/query · ${(walk.frames / Math.max(seconds, 0.001)).toFixed(1)} images/s`;
  if (walk.error) {  // the last error stays on screen (every frame rewrites the status line)
    status += ` · last error ${((millis() - walk.errorAt) / 1000).toFixed(0)} s ago: ${walk.error}`;
  }
  document.getElementById("status").textContent = status;
};

window.windowResized = () => resizeCanvas(windowWidth, windowHeight);

// What both pages that run on the camera share (footseg's app.js and the MediaPipe peer's peer.js, which
// `footseg bench --browser` compares): the camera, canvases, the tinted mask overlay and rolling latency statistics.
// No DOM lookups and no model here, so each page keeps its own elements and runtime.

export const FOOT_RGB = [40, 220, 60]; // footseg.eval.predict.FOOT_COLOUR
export const MAX_ALPHA = 0.55;
const LATENCY_WINDOW = 120;

// Plain canvases, not OffscreenCanvas: iOS Safari before 16.4 has no 2D OffscreenCanvas.
export function makeCanvas(width, height) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

// Browsers refuse a canvas larger than this (iOS Safari: 16,777,216 pixels; its 2D context is then null): a larger
// photo (a 24- or 48-megapixel phone photo among them) is read a strip of rows at a time (app.js; scaled to fit one
// canvas where the browser crops a turned picture wrongly) and its mask written without a canvas (png.js).
export const MAX_CANVAS_AREA = 4096 * 4096;

// (width, height) scaled by one factor, whole pixels, to at most `limit` pixels in all (never up).
export function fitArea(width, height, limit = MAX_CANVAS_AREA) {
  if (width * height <= limit) return [width, height];
  const scale = Math.sqrt(limit / (width * height));
  let [w, h] = [Math.max(1, Math.floor(width * scale)), Math.max(1, Math.floor(height * scale))];
  while (w * h > limit) { // the square root's last bit
    if (w >= h) w -= 1;
    else h -= 1;
  }
  return [w, h];
}

// A canvas's memory back now, not at the next collection (iOS counts every live canvas against a budget).
export function freeCanvas(canvas) {
  canvas.width = 0;
  canvas.height = 0;
}

// The rear camera into `video`, playing. 'ideal', not 'exact': a laptop's only camera faces the user and should still
// work. getUserMedia's own errors (NotFoundError, NotAllowedError, ...) reach the caller unchanged.
export async function startCamera(video) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: 'environment' }, width: { ideal: 640 }, height: { ideal: 480 } },
    audio: false,
  });
  video.srcObject = stream;
  await new Promise((resolve) => {
    if (video.readyState >= 1) resolve();
    else video.addEventListener('loadedmetadata', resolve, { once: true });
  });
  try {
    await video.play();
  } catch (error) {
    // The permission was given (the stream is here): a play() refused (an autoplay policy) is no "permission denied",
    // which its NotAllowedError would read as, and the camera is let go rather than held with its light on.
    stream.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
    throw Object.assign(new Error(`the browser would not play its picture (${error?.name ?? 'Error'}: `
      + `${error?.message ?? error})`), { name: 'PlayError' });
  }
  return stream;
}

// A byte's value in [0, 1] as float32, looked up: the same numbers as dividing each time (v / 255 rounded to float32),
// without a division per channel of every pixel (half the time of this loop).
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

// (h*w*4) RGBA bytes -> (3, h, w) float32 RGB in [0, 1], as footseg.data.transforms.to_tensor.
export function toInput(rgba, width, height) {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0, j = 0; i < plane; i += 1, j += 4) {
    out[i] = UNIT[rgba[j]];
    out[plane + i] = UNIT[rgba[j + 1]];
    out[2 * plane + i] = UNIT[rgba[j + 2]];
  }
  return out;
}

// An RGBA pixel as one 32-bit word where the platform is little-endian (every phone): one store per pixel, not four.
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const FOOT_WORD = FOOT_RGB[0] | (FOOT_RGB[1] << 8) | (FOOT_RGB[2] << 16);

// The foot probability as a green tint whose opacity is the probability (into `rgba`, an ImageData's bytes of the
// same size), and the 0/1 mask: foot above the model's threshold, as footseg's Predictor decides.
export function paintMask(prob, rgba, threshold) {
  const bound = Math.fround(threshold); // numpy compares the float32 map with a float32 threshold
  const mask = new Uint8Array(prob.length);
  if (LITTLE_ENDIAN && rgba.byteOffset % 4 === 0 && rgba.length >= 4 * prob.length) {
    const words = new Uint32Array(rgba.buffer, rgba.byteOffset, prob.length);
    for (let i = 0; i < prob.length; i += 1) {
      mask[i] = prob[i] > bound ? 1 : 0;
      words[i] = FOOT_WORD | (Math.round(255 * MAX_ALPHA * prob[i]) << 24);
    }
    return mask;
  }
  for (let i = 0, j = 0; i < prob.length; i += 1, j += 4) {
    mask[i] = prob[i] > bound ? 1 : 0;
    rgba[j] = FOOT_RGB[0];
    rgba[j + 1] = FOOT_RGB[1];
    rgba[j + 2] = FOOT_RGB[2];
    rgba[j + 3] = Math.round(255 * MAX_ALPHA * prob[i]);
  }
  return mask;
}

// Rolling statistics over the last frames; the median and 90th percentile hide single hiccups, not trends.
export class LatencyMeter {
  constructor() {
    this.latencies = [];
    this.doneTimes = [];
  }

  // One frame took `ms`: returns { latency: { last, median, p90 }, fps } (frames finished in the last second).
  record(ms) {
    this.latencies.push(ms);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pick = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    const now = performance.now();
    this.doneTimes.push(now);
    while (this.doneTimes.length && this.doneTimes[0] < now - 1000) this.doneTimes.shift();
    return { latency: { last: ms, median: pick(0.5), p90: pick(0.9) }, fps: this.doneTimes.length };
  }
}

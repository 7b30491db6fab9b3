// The model side of the page: pre-processing, ONNX Runtime Web, and the video modes of footseg.runtime.temporal.
// Kept free of DOM drawing so that what the network sees and returns can be compared with footseg's Python.
import * as ort from './ort.wasm.min.mjs';

export const MODES = ['per-frame', 'smooth', 'prior'];

export { toInput } from './view.js';

// The exported file's one channel is the margin m = l1 - l0; softmax([l0, l1])[1] = sigmoid(m).
export function marginToProbability(margin) {
  const out = new Float32Array(margin.length);
  for (let i = 0; i < margin.length; i += 1) out[i] = 1 / (1 + Math.exp(-margin[i]));
  return out;
}

// Which source pixels make each output pixel along one axis, and their weights: OpenCV's table for INTER_AREA
// (resize.cpp, computeResizeAreaTab), scale computed as cv2.resize computes it and weights rounded to float32.
function areaTable(sourceSize, size) {
  const scale = 1 / (size / sourceSize);
  const to = [];
  const from = [];
  const weight = [];
  const add = (d, s, w) => { to.push(d); from.push(s); weight.push(w); };
  for (let d = 0; d < size; d += 1) {
    const start = d * scale;
    const end = start + scale;
    const cell = Math.min(scale, sourceSize - start);
    const last = Math.min(Math.floor(end), sourceSize - 1);
    const first = Math.min(Math.ceil(start), last);
    if (first - start > 1e-3) add(d, first - 1, (first - start) / cell);
    for (let s = first; s < last; s += 1) add(d, s, 1 / cell);
    if (end - last > 1e-3) add(d, last, Math.min(Math.min(end - last, 1), cell) / cell);
  }
  return { to: Int32Array.from(to), from: Int32Array.from(from), weight: Float32Array.from(weight) };
}

// lrintf: to the nearest integer, ties to even, as OpenCV's saturate_cast<uchar> rounds a float.
function roundHalfEven(value) {
  const r = Math.round(value);
  return r - value === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// OpenCV's INTER_AREA where both scales are whole numbers (its "fast" path): the block's plain sum, divided as
// OpenCV divides it (2x2 blocks round ties up, others ties to even).
function blockMean(rowAt, width, height, fx, fy) {
  const out = new Uint8ClampedArray(4 * width * height);
  const area = fx * fy;
  const inverse = Math.fround(1 / area);
  const mean = area === 4 && fx === 2 ? (sum) => (sum + 2) >> 2 : (sum) => roundHalfEven(Math.fround(sum * inverse));
  const sums = new Int32Array(3 * width); // whole numbers: the order they are added in changes nothing
  for (let y = 0; y < height; y += 1) {
    sums.fill(0);
    for (let dy = 0; dy < fy; dy += 1) { // source rows in order: a photo comes a strip at a time
      const [rgba, offset] = rowAt(y * fy + dy);
      for (let x = 0; x < width; x += 1) {
        const start = offset + 4 * x * fx;
        for (let dx = 0; dx < fx; dx += 1) {
          sums[3 * x] += rgba[start + 4 * dx];
          sums[3 * x + 1] += rgba[start + 4 * dx + 1];
          sums[3 * x + 2] += rgba[start + 4 * dx + 2];
        }
      }
    }
    for (let x = 0; x < width; x += 1) {
      const k = 4 * (y * width + x);
      out[k] = mean(sums[3 * x]);
      out[k + 1] = mean(sums[3 * x + 1]);
      out[k + 2] = mean(sums[3 * x + 2]);
      out[k + 3] = 255;
    }
  }
  return out;
}

// footseg's resize_image where it shrinks (cv2.INTER_AREA): RGBA bytes (sourceWidth x sourceHeight) to RGBA bytes
// (width x height), each output pixel the area-weighted mean of the source pixels under it, in float32 and rounded
// as OpenCV does, to the byte. Used for photos, so that a photo opened on the page gets the network input footseg's
// Predictor makes of it; live frames keep the canvas's own filter, which costs nothing. Both sides must shrink or
// stay (sourceWidth >= width, sourceHeight >= height). `rowAt(y)` gives source row y as [bytes, offset of its first
// pixel]; rows are asked for in order (never an earlier one after a later), so a photo larger than any canvas may be
// is read a strip at a time.
export function areaResize(rowAt, sourceWidth, sourceHeight, width, height) {
  if (sourceWidth < width || sourceHeight < height) throw new Error('areaResize only shrinks');
  // OpenCV's own test for its fast path: both scales, computed as it computes them, whole to the last bit (for some
  // whole ratios, 49 among them, 1 / (1 / 49) is not 49 in doubles, and OpenCV takes the general path)
  const [fx, fy] = [1 / (width / sourceWidth), 1 / (height / sourceHeight)];
  if (Math.abs(fx - Math.round(fx)) < Number.EPSILON && Math.abs(fy - Math.round(fy)) < Number.EPSILON) {
    return blockMean(rowAt, width, height, Math.round(fx), Math.round(fy));
  }
  const xs = areaTable(sourceWidth, width);
  const ys = areaTable(sourceHeight, height);
  const row = new Float32Array(3 * width); // one source row, resized horizontally
  const sum = new Float32Array(3 * width); // the output row being summed, source row by source row
  const out = new Uint8ClampedArray(4 * width * height);
  const flush = (y) => {
    for (let x = 0; x < width; x += 1) {
      const k = 4 * (y * width + x);
      out[k] = roundHalfEven(sum[3 * x]);
      out[k + 1] = roundHalfEven(sum[3 * x + 1]);
      out[k + 2] = roundHalfEven(sum[3 * x + 2]);
      out[k + 3] = 255;
    }
  };
  let current = -1;
  for (let j = 0; j < ys.to.length; j += 1) {
    const y = ys.to[j];
    const beta = ys.weight[j];
    const [rgba, base] = rowAt(ys.from[j]);
    row.fill(0);
    for (let k = 0; k < xs.to.length; k += 1) {
      const s = base + 4 * xs.from[k];
      const d = 3 * xs.to[k];
      const alpha = xs.weight[k];
      row[d] += Math.fround(rgba[s] * alpha);
      row[d + 1] += Math.fround(rgba[s + 1] * alpha);
      row[d + 2] += Math.fround(rgba[s + 2] * alpha);
    }
    if (y !== current) {
      if (current >= 0) flush(current);
      current = y;
      for (let i = 0; i < row.length; i += 1) sum[i] = Math.fround(beta * row[i]);
    } else {
      for (let i = 0; i < row.length; i += 1) sum[i] += Math.fround(beta * row[i]);
    }
  }
  flush(current);
  return out;
}

// footseg.runtime.keep_confident_regions, in place: a region of foot (8-connected pixels above threshold) is cleared
// (set to 0) unless a pixel of it exceeds peak or it holds the map's most confident pixel; peak null keeps every
// region. Flood-filled from those pixels, which keeps exactly the regions Python's connected components keep.
let scratch = { kept: new Uint8Array(0), stack: new Int32Array(0) }; // reused frame to frame: no per-frame garbage

export function keepConfidentRegions(prob, width, height, threshold, peak) {
  if (peak === null || peak === undefined) return prob;
  // numpy compares a float32 map with float32 bounds: 0.99 there is 0.9900000095, above the double 0.99
  const [low, high] = [Math.fround(threshold), Math.fround(peak)];
  const n = prob.length;
  if (scratch.kept.length !== n) scratch = { kept: new Uint8Array(n), stack: new Int32Array(n) };
  const { kept, stack } = scratch;
  kept.fill(0);
  let top = 0;
  const reach = (i) => {
    if (!kept[i] && prob[i] > low) {
      kept[i] = 1;
      stack[top] = i;
      top += 1;
    }
  };
  let best = 0;
  for (let i = 0; i < n; i += 1) {
    if (prob[i] > prob[best]) best = i;
    if (prob[i] > high) reach(i);
  }
  reach(best);
  while (top > 0) {
    top -= 1;
    const i = stack[top];
    const x = i % width;
    const y = (i - x) / width;
    for (let yy = Math.max(0, y - 1); yy <= Math.min(height - 1, y + 1); yy += 1) {
      for (let xx = Math.max(0, x - 1); xx <= Math.min(width - 1, x + 1); xx += 1) reach(yy * width + xx);
    }
  }
  for (let i = 0; i < n; i += 1) if (prob[i] > low && !kept[i]) prob[i] = 0;
  return prob;
}

// footseg.runtime.gate_presence, in place: the whole frame is cleared unless some pixel exceeds presence (a
// frame-level "is there a foot at all", as a detector's presence score); presence null clears nothing.
export function gatePresence(prob, presence) {
  if (presence === null || presence === undefined) return prob;
  const level = Math.fround(presence); // compared in float32, as numpy compares the float32 map
  for (let i = 0; i < prob.length; i += 1) if (prob[i] > level) return prob;
  return prob.fill(0);
}

// MediaPipe's uncertainty-weighted blend, exactly footseg.runtime.temporal.smooth: confident pixels follow the new
// frame, unsure ones (binary entropy near 1 bit) keep the previous output.
export function smooth(next, previous, ratio) {
  const out = new Float32Array(next.length);
  for (let i = 0; i < next.length; i += 1) {
    const n = next[i];
    const p = Math.min(Math.max(n, 1e-6), 1 - 1e-6);
    const entropy = -(p * Math.log2(p) + (1 - p) * Math.log2(1 - p));
    out[i] = n + (previous[i] - n) * (entropy * entropy * ratio);
  }
  return out;
}

// What a frame needs from the one before, at the network's resolution (footseg.runtime.temporal.VideoSegmenter).
export class VideoState {
  constructor(mode, ratio, plane) {
    if (!MODES.includes(mode)) throw new Error(`unknown video mode '${mode}'; choose one of: ${MODES.join(', ')}`);
    if (!(ratio >= 0 && ratio <= 1)) throw new Error(`the smoothing ratio must lie in [0, 1], got ${ratio}`);
    this.mode = mode;
    this.ratio = ratio;
    this.plane = plane;
    this.previous = null;
  }

  reset() {
    this.previous = null;
  }

  // The prior input for the next frame: the previous probability, zeros on a first frame (as in training).
  prior() {
    if (this.mode !== 'prior') return null;
    return this.previous ?? new Float32Array(this.plane);
  }

  // The frame's output from the network's probability; advances the state. As in footseg.runtime.temporal, the
  // prior mode smooths the network's output too (ratio 0: not at all), and that smoothed map is the next prior.
  update(prob) {
    let out = prob;
    if (this.mode !== 'per-frame' && this.previous !== null && this.ratio > 0) {
      out = smooth(prob, this.previous, this.ratio);
    }
    if (this.mode !== 'per-frame') this.previous = out;
    return out;
  }
}

export const MAX_THREADS = 16; // what ?threads= is capped at

// Threads share memory through SharedArrayBuffer, which browsers give only to cross-origin isolated pages: elsewhere
// ONNX Runtime runs on one thread whatever it is asked, so that is what is reported.
export function defaultThreads(params, isolated, cores) {
  if (!isolated) return 1;
  const asked = Number.parseInt(params.get('threads') ?? '', 10);
  if (Number.isFinite(asked) && asked >= 1) return Math.min(asked, MAX_THREADS);
  return Math.max(1, Math.min(4, cores || 1));
}

export class Segmenter {
  static async create(base, meta, { threads, mode, ratio }) {
    ort.env.wasm.wasmPaths = base; // the site's own copy: no CDN, nothing fetched from elsewhere
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    const session = await ort.InferenceSession.create(new URL(meta.file, base).href, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    return new Segmenter(session, meta, mode, ratio);
  }

  constructor(session, meta, mode, ratio) {
    this.session = session;
    this.meta = meta;
    [this.height, this.width] = meta.input_size;
    this.state = new VideoState(mode, ratio, this.width * this.height);
  }

  get mode() {
    return this.state.mode;
  }

  // One frame: input (3, h, w) float32 -> { prob, prior } at the network's size; prob is the frame's output after
  // the video mode, prior what the network (prior mode) or the blend (smooth mode) was given from the frame before.
  async step(input) {
    const prior = this.state.prior();
    const previous = this.state.previous;
    const prob = this.state.update(await this.probability(input, prior));
    return { prob, prior: prior ?? (this.state.mode === 'smooth' ? previous : null) };
  }

  // A photo on its own, as footseg's Predictor segments one: the network and its clean-up, outside the video modes
  // (the video state is neither read nor advanced; a prior-mask network sees a first frame's zeros).
  async still(input) {
    return { prob: await this.probability(input, null), prior: null };
  }

  // The foot probability of one input at the network's size: sigmoid of the margin, unsure regions and a failed
  // presence gate cleared.
  async probability(input, prior) {
    const { height: h, width: w } = this;
    const feeds = { [this.meta.inputs.image]: new ort.Tensor('float32', input, [1, 3, h, w]) };
    if (this.meta.inputs.prior) {
      // A prior-mask network needs its prior input in every mode; outside the prior mode it sees a first frame's
      // zeros each time, as footseg's Python runtime feeds it.
      feeds[this.meta.inputs.prior] = new ort.Tensor('float32', prior ?? new Float32Array(h * w), [1, 1, h, w]);
    }
    const results = await this.session.run(feeds);
    const output = results[this.meta.output.name];
    const prob = gatePresence(keepConfidentRegions(marginToProbability(output.data), w, h, this.meta.threshold,
      this.meta.region_peak), this.meta.presence);
    output.dispose?.();
    return prob;
  }
}

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

// Threads share memory through SharedArrayBuffer, which browsers give only to cross-origin isolated pages: elsewhere
// ONNX Runtime runs on one thread whatever it is asked, so that is what is reported.
export function defaultThreads(params, isolated, cores) {
  if (!isolated) return 1;
  const asked = Number.parseInt(params.get('threads') ?? '', 10);
  if (Number.isFinite(asked) && asked >= 1) return Math.min(asked, 16);
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
    const { height: h, width: w } = this;
    const feeds = { [this.meta.inputs.image]: new ort.Tensor('float32', input, [1, 3, h, w]) };
    const prior = this.state.prior();
    if (this.meta.inputs.prior) {
      // A prior-mask network needs its prior input in every mode; outside the prior mode it sees a first frame's
      // zeros each time, as footseg's Python runtime feeds it.
      feeds[this.meta.inputs.prior] = new ort.Tensor('float32', prior ?? new Float32Array(h * w), [1, 1, h, w]);
    }
    const previous = this.state.previous;
    const results = await this.session.run(feeds);
    const output = results[this.meta.output.name];
    const raw = gatePresence(keepConfidentRegions(marginToProbability(output.data), w, h, this.meta.threshold,
      this.meta.region_peak), this.meta.presence);
    output.dispose?.();
    const prob = this.state.update(raw);
    return { prob, prior: prior ?? (this.state.mode === 'smooth' ? previous : null) };
  }
}

// MediaPipe's selfie segmenter (@mediapipe/tasks-vision, CPU delegate, VIDEO running mode) on the camera: the peer
// of footseg's page in `footseg bench --browser` (footseg.bench.browser serves it from a folder of its own with the
// tasks-vision bundle, its WASM files and the model, nothing from a CDN). It runs footseg's loop (app.js): a frame
// whenever the camera has a new one and the segmenter is idle, timed from frame to mask with performance.now(), and
// it exposes the same window.footseg counters, so one reader serves both pages.
import { ImageSegmenter } from './vision_bundle.mjs';
import { LatencyMeter, makeCanvas, paintMask, startCamera, toInput } from './view.js';

const MODEL = 'selfie_segmentation.tflite';
const NETWORK_SIZE = 256; // the selfie segmenter's input side: the bench compares frames with the clip's at this size

const video = document.getElementById('camera');
const view = document.getElementById('view');
const viewCtx = view.getContext('2d');
const stats = document.getElementById('stats');

const footseg = {
  ready: false,
  frames: 0,
  errors: [],
  latency: { last: null, median: null, p90: null },
  fps: null,
  lastMask: null, // Uint8Array, 1 = person, at maskSize (the camera's size: MediaPipe resizes its mask back)
  lastProb: null, // MediaPipe's confidence mask, Float32Array at maskSize
  lastInput: null, // while record is set: the frame at NETWORK_SIZE, (3, h, w) float32 in [0, 1] like footseg's page
  inputSize: [NETWORK_SIZE, NETWORK_SIZE],
  maskSize: null,
  threads: 1, // tasks-vision's WASM build has no threads
  precision: 'fp16 weights, fp32 compute',
  mode: 'per-frame',
  isolated: window.crossOriginIsolated === true,
  // Set by a benchmark: record makes each frame pass through a canvas first, so that lastInput is exactly the
  // picture the mask was made from (slower: not for timing); onFrame(footseg) is called after every frame.
  record: false,
  onFrame: null,
};
window.footseg = footseg;

function fail(detail) {
  footseg.errors.push(String(detail));
  stats.textContent = `Something went wrong: ${detail}`;
  console.error(detail);
}

async function loadSegmenter() {
  const base = new URL('./', import.meta.url);
  // The SIMD build only, named directly: FilesetResolver would pick the same files after probing for SIMD.
  const fileset = {
    wasmLoaderPath: new URL('vision_wasm_internal.js', base).href,
    wasmBinaryPath: new URL('vision_wasm_internal.wasm', base).href,
  };
  return ImageSegmenter.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: new URL(MODEL, base).href, delegate: 'CPU' },
    runningMode: 'VIDEO',
    outputCategoryMask: false,
    outputConfidenceMasks: true,
  });
}

const meter = new LatencyMeter();

function record(ms) {
  Object.assign(footseg, meter.record(ms));
  stats.textContent = `MediaPipe selfie segmenter · ${footseg.fps} FPS · ${ms.toFixed(0)} ms (median `
    + `${footseg.latency.median.toFixed(0)}, p90 ${footseg.latency.p90.toFixed(0)})`;
}

function run(segmenter) {
  const frame = makeCanvas(1, 1);
  const frameCtx = frame.getContext('2d');
  const small = makeCanvas(NETWORK_SIZE, NETWORK_SIZE);
  const smallCtx = small.getContext('2d', { willReadFrequently: true });
  smallCtx.imageSmoothingQuality = 'high'; // as footseg's page shrinks frames (area-like averaging)
  let overlay = null;
  let overlayCtx = null;
  let overlayPixels = null;
  let lastTimestamp = -1;

  // ``shown``: the picture segmented last (the video, or its copy in ``frame`` while recording), under its mask.
  function draw(shown) {
    if (view.width !== video.videoWidth || view.height !== video.videoHeight) {
      view.width = video.videoWidth;
      view.height = video.videoHeight;
    }
    viewCtx.drawImage(shown, 0, 0, view.width, view.height);
    if (overlay !== null) viewCtx.drawImage(overlay, 0, 0, view.width, view.height);
  }

  // Segments the camera's current frame (synchronously: MediaPipe's VIDEO mode blocks); returns the picture it read.
  function segment() {
    let source = video;
    let input = null;
    if (footseg.record) {
      frame.width = video.videoWidth;
      frame.height = video.videoHeight;
      frameCtx.drawImage(video, 0, 0);
      source = frame;
      smallCtx.drawImage(frame, 0, 0, NETWORK_SIZE, NETWORK_SIZE);
      input = toInput(smallCtx.getImageData(0, 0, NETWORK_SIZE, NETWORK_SIZE).data, NETWORK_SIZE, NETWORK_SIZE);
    }
    const t0 = performance.now();
    // VIDEO mode wants strictly increasing timestamps (ms).
    lastTimestamp = Math.max(Math.round(t0), lastTimestamp + 1);
    let mask = null;
    let prob = null;
    let size = null;
    // The callback form: MediaPipe's masks are valid only inside it, which spares a copy (its fast path).
    segmenter.segmentForVideo(source, lastTimestamp, (result) => {
      const confidence = result.confidenceMasks[result.confidenceMasks.length - 1]; // the person class
      const { width: w, height: h } = confidence;
      prob = confidence.getAsFloat32Array().slice();
      size = [h, w];
      if (overlay === null || overlay.width !== w || overlay.height !== h) {
        overlay = makeCanvas(w, h);
        overlayCtx = overlay.getContext('2d');
        overlayPixels = overlayCtx.createImageData(w, h);
      }
      mask = paintMask(prob, overlayPixels.data, 0.5); // MediaPipe's confidence, cut as its examples do
      overlayCtx.putImageData(overlayPixels, 0, 0);
    });
    Object.assign(footseg, { lastMask: mask, lastProb: prob, lastInput: input, maskSize: size });
    footseg.frames += 1;
    record(performance.now() - t0);
    footseg.onFrame?.(footseg);
    return source;
  }

  // The frame is drawn after it is segmented, under its own mask, as footseg's page draws it (app.js), not under the
  // previous frame's.
  function onFrame() {
    try {
      draw(segment());
    } catch (error) {
      fail(`segmentation failed (${error?.message ?? error})`);
    }
    if (!footseg.errors.length) video.requestVideoFrameCallback(onFrame);
  }

  footseg.ready = true;
  video.requestVideoFrameCallback(onFrame);
}

async function main() {
  const [camera, segmenter] = await Promise.allSettled([startCamera(video), loadSegmenter()]);
  if (camera.status === 'rejected') throw new Error(`camera: ${camera.reason?.name}: ${camera.reason?.message}`);
  if (segmenter.status === 'rejected') throw new Error(`MediaPipe: ${segmenter.reason?.message ?? segmenter.reason}`);
  run(segmenter.value);
}

main().catch((error) => fail(error?.message ?? String(error)));

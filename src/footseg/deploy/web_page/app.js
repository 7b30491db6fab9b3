// The page: the rear camera, the foot mask over it, FPS and latency, a photo button; a photo from the phone's
// gallery can be opened instead of the camera (and without one).
// window.footseg exposes the page's state so that tests and benchmarks read what the page computed.
import { maskPng } from './png.js';
import { MAX_THREADS, MODES, Segmenter, areaResize, defaultThreads } from './segmenter.js';
import {
  LatencyMeter, MAX_CANVAS_AREA, fitArea, freeCanvas, makeCanvas, paintMask, startCamera as openCamera, toInput,
} from './view.js';

const params = new URLSearchParams(window.location.search);
const $ = (id) => document.getElementById(id);
const video = $('camera');
const view = $('view');
const viewCtx = view.getContext('2d');
const stats = $('stats');
const photoButton = $('photo');
const openButton = $('open');
const saveButton = $('save');
const fileInput = $('file');

const footseg = {
  ready: false,
  frames: 0,
  errors: [],
  latency: { last: null, median: null, p90: null },
  fps: null,
  lastMask: null,
  lastInput: null,
  lastPrior: null,
  lastProb: null,
  inputSize: null,
  mode: null,
  ratio: null,
  threads: null,
  precision: null,
  threshold: null, // foot where the probability exceeds it: the model's own (model.json)
  photos: 0, // photos opened and segmented
  photo: null, // the opened photo shown: { name, width, height (upright, as shown), ms (input to mask) }; null: camera
  warnings: [], // problems that stopped nothing: a file that is no picture
  isolated: window.crossOriginIsolated === true,
  onFrame: null, // set by a benchmark: called with this object after every frame
};
window.footseg = footseg;

const MESSAGES = {
  'no-wasm': 'This browser cannot run WebAssembly, which the foot model needs. Open the page in a current Chrome, '
    + 'Safari, Firefox or Edge.',
  'insecure': 'The camera needs a secure page: open it over HTTPS (footseg serve --lan) or on localhost.',
  'no-camera-api': 'This browser gives web pages no camera access.',
  'no-camera': 'No camera found. Open this page on a phone, or connect a camera, and reload.',
  'denied': 'Camera permission was denied. Allow camera access for this site in the browser\'s settings, then reload.',
  'camera-busy': 'The camera could not be started: another app may be using it. Close that app and reload.',
  'camera-lost': 'The camera stopped: another app may have taken it, or its permission was withdrawn. Reload to start '
    + 'it again.',
};
const PHOTO_HINT = ' A photo from this device can still be opened: Open photo, below.';

// Kinds of message that stop nothing: a tap on the message puts it away.
const PASSING = ['bad-photo'];

function showMessage(kind, text) {
  const box = $('message');
  box.dataset.kind = kind;
  box.textContent = PASSING.includes(kind) ? `${text} (Tap to close.)` : text;
  box.hidden = false;
}

$('message').addEventListener('click', () => {
  if (PASSING.includes($('message').dataset.kind)) $('message').hidden = true;
});

// Resolves once the browser has painted what was just changed (a long computation would otherwise hide it), or after
// 100 ms where it paints nothing (a page out of view).
function painted() {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, 100);
  });
}

// A file dropped on the page (on a computer) opens as Open photo opens it, once the page is ready; before that, and
// for anything else dropped, it must at least not replace the page, which is what the browser would do with it.
let openDropped = null;
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => {
  event.preventDefault();
  const file = event.dataTransfer?.files?.[0];
  if (file) openDropped?.(file);
});

function fail(kind, detail) {
  const text = MESSAGES[kind] ?? `Something went wrong: ${detail ?? kind}`;
  footseg.errors.push(text);
  showMessage(kind in MESSAGES ? kind : 'error', text);
  stats.textContent = '';
  $('controls').hidden = true; // nothing to photograph
  // The page has stopped: let the camera go, so its light goes out and other apps can have it.
  video.srcObject?.getTracks?.().forEach((track) => track.stop());
  if (detail) console.error(detail);
}

function cameraProblem(error) {
  const name = error?.name ?? '';
  if (['NotFoundError', 'DevicesNotFoundError', 'OverconstrainedError'].includes(name)) return 'no-camera';
  if (['NotAllowedError', 'PermissionDeniedError', 'SecurityError'].includes(name)) return 'denied';
  if (['NotReadableError', 'TrackStartError', 'AbortError'].includes(name)) return 'camera-busy';
  return null;
}

async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw Object.assign(new Error('no getUserMedia'), { kind: window.isSecureContext ? 'no-camera-api' : 'insecure' });
  }
  try {
    return await openCamera(video);
  } catch (error) {
    throw Object.assign(error, { kind: cameraProblem(error) ?? 'error' });
  }
}

async function loadModel(base) {
  const response = await fetch(new URL('model.json', base));
  if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
  const meta = await response.json();
  const mode = params.get('mode') ?? meta.default_mode;
  const ratio = params.has('ratio') ? Number.parseFloat(params.get('ratio')) : (meta.default_ratios[mode] ?? 0);
  if (!MODES.includes(mode)) throw new Error(`unknown ?mode=${mode}; choose one of: ${MODES.join(', ')}`);
  if (mode === 'prior' && !meta.prior) throw new Error('this model has no prior input; use ?mode=per-frame or smooth');
  // checked here, not by the segmenter: an error while ONNX Runtime starts is taken for one of its threads
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new Error(`?ratio=${params.get('ratio')}: the smoothing strength is a number from 0 to 1`);
  }
  if (params.has('threads') && !/^[1-9][0-9]*$/.test(params.get('threads'))) {
    throw new Error(`?threads=${params.get('threads')}: the number of threads is a whole number from 1 (at most `
      + `${MAX_THREADS} are used)`);
  }
  const threads = defaultThreads(params, footseg.isolated, navigator.hardwareConcurrency);
  let segmenter;
  try {
    segmenter = await Segmenter.create(base, meta, { threads, mode, ratio });
  } catch (error) {
    // iOS Safari has failed ONNX Runtime's threaded WASM ("Out of memory" for its shared memory) where one thread
    // works, and ONNX Runtime cannot start again in the same page: once, unless threads were asked for, the page
    // reloads itself on one thread.
    if (threads > 1 && !params.has('threads')) {
      console.error(`${threads} WASM threads failed (${error?.message ?? error}); reloading on one thread`);
      const url = new URL(window.location.href);
      url.searchParams.set('threads', '1');
      window.location.replace(url.href);
      return new Promise(() => {}); // the page is being replaced
    }
    throw error;
  }
  Object.assign(footseg, {
    inputSize: meta.input_size, mode, ratio, threads, precision: meta.precision, threshold: meta.threshold,
  });
  return segmenter;
}

const meter = new LatencyMeter();

// `show` false: the frame is counted, and the figures leave what the page says meanwhile (a photo being opened).
function record(ms, show = true) {
  Object.assign(footseg, meter.record(ms));
  if (!show) return;
  stats.textContent = `${footseg.fps} FPS · ${ms.toFixed(0)} ms (median ${footseg.latency.median.toFixed(0)}, `
    + `p90 ${footseg.latency.p90.toFixed(0)})\n${footseg.threads} thread${footseg.threads > 1 ? 's' : ''} · `
    + `${footseg.precision} · ${footseg.mode}`;
}

async function main() {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.instantiate !== 'function') {
    fail('no-wasm');
    return;
  }
  const base = new URL('./', import.meta.url).href;
  // The camera waits on the user's answer to the browser's prompt, which may come late or never (a prompt ignored or
  // dismissed leaves getUserMedia unsettled): photos open as soon as the model is ready, the camera joins when it comes.
  let cameraSettled = false;
  const camera = startCamera().finally(() => { cameraSettled = true; });
  camera.catch(() => {}); // answered below, after the model
  let segmenter;
  try {
    segmenter = await loadModel(base);
  } catch (error) {
    fail('error', `the page could not start (${error?.message ?? error})`);
    camera.then((stream) => stream.getTracks().forEach((track) => track.stop()), () => {}); // a camera come late
    return;
  }
  const page = run(segmenter);
  if (!cameraSettled) stats.textContent = 'Waiting for the camera (allow it when the browser asks)…';
  try {
    await camera;
  } catch (reason) {
    // No live picture, but the model runs: the page says why and segments photos opened from the device instead.
    const { kind, name, message } = reason;
    const detail = `camera: ${name ?? 'Error'}: ${message ?? reason}`;
    const text = MESSAGES[kind] ?? `The camera could not be started (${detail}).`;
    footseg.errors.push(text);
    showMessage(kind in MESSAGES ? kind : 'error', text + PHOTO_HINT);
    stats.textContent = '';
    console.error(detail);
    return;
  }
  if (footseg.errors.length) { // the page stopped while the camera was starting (fail): let the camera go
    video.srcObject?.getTracks?.().forEach((track) => track.stop());
    return;
  }
  page.goLive();
}

// The picked file as an upright picture (browsers apply a JPEG's EXIF orientation when they decode it, as footseg's
// read_image does), or an error that names the file.
async function decodePhoto(file) {
  const url = URL.createObjectURL(file);
  const image = new Image();
  try {
    image.src = url;
    await image.decode();
  } catch {
    throw Object.assign(new Error(`${file.name}: this browser cannot read it as a picture; open a JPEG, PNG or WebP `
      + 'photo'), { kind: 'bad-photo' });
  } finally {
    URL.revokeObjectURL(url); // a decoded picture keeps its pixels
  }
  if (!image.naturalWidth || !image.naturalHeight) {
    throw Object.assign(new Error(`${file.name}: the picture is empty`), { kind: 'bad-photo' });
  }
  return image;
}

function sizeOf(source) {
  return source instanceof HTMLVideoElement
    ? [source.videoWidth, source.videoHeight] : [source.naturalWidth, source.naturalHeight];
}

// A photo stored turned (EXIF orientation 6, as phones store them) is read a strip at a time through drawImage's source
// rectangle, which browsers measure on the upright picture, as the spec says; engines that once measured it on the
// stored one are caught here, once: an 8x16 picture, white above black, stored 16x8.
const TURNED_PROBE = 'data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/4QAiRXhpZgAATU0AKgAAAAgAAQESAAMAAAABAAYAAAAAAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT/2wBDAQMEBAUEBQkFBQkUDQsNFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBT/wAARCAAIABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwD9U6/lXoooA//Z';
let uprightCrops = null;

function cropsUpright() {
  uprightCrops ??= (async () => {
    const probe = new Image();
    probe.src = TURNED_PROBE;
    await probe.decode();
    const canvas = makeCanvas(1, 1);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(probe, 0, 12, 1, 1, 0, 0, 1, 1); // the upright picture's lower half: black
    const [red, , , alpha] = ctx.getImageData(0, 0, 1, 1).data;
    freeCanvas(canvas);
    return alpha === 255 && red < 128;
  })().catch(() => false);
  return uprightCrops;
}

// The page's loop and buttons for ``segmenter``: photos open at once; ``goLive()`` adds the camera once it runs.
function run(segmenter) {
  const { width: w, height: h } = segmenter;
  // The network's view of the frame: squashed to its input size like footseg's resize_image; 'high' quality
  // averages when shrinking, as cv2's INTER_AREA does.
  const input = makeCanvas(w, h);
  const inputCtx = input.getContext('2d', { willReadFrequently: true });
  inputCtx.imageSmoothingQuality = 'high';
  // The mask at network resolution, probability as alpha; drawn scaled up with bilinear smoothing: soft edges.
  const overlay = makeCanvas(w, h);
  const overlayCtx = overlay.getContext('2d');
  const overlayPixels = overlayCtx.createImageData(w, h);
  // The camera frame being segmented, kept: the view shows each frame with its own mask. The video itself has moved on
  // by the time a slow phone's mask is ready, and a mask drawn over a later frame trails a moving foot.
  const frame = makeCanvas(1, 1);
  const frameCtx = frame.getContext('2d');
  let busy = null;
  let frozen = false;
  let live = false; // the camera runs (``goLive``)
  let shown = null; // what the view shows: the camera, or an opened photo
  let lost = false; // the camera was taken away
  let photoName = null;
  let opening = false; // a photo is being decoded: what the page says of it stays

  // ``mask`` false: the picture alone (a photo being segmented, whose mask is not there yet).
  function draw(mask = true) {
    // the camera's picture is the frame segmented, at the size it had then (a phone turned since has another)
    const [width, height] = shown === video ? [frame.width, frame.height] : fitArea(...sizeOf(shown), MAX_VIEW_AREA);
    if (view.width !== width || view.height !== height) {
      view.width = width;
      view.height = height;
    }
    viewCtx.clearRect(0, 0, view.width, view.height); // a transparent photo shows nothing of the picture before it
    viewCtx.drawImage(shown === video ? frame : shown, 0, 0, view.width, view.height);
    if (footseg.lastProb === null || !mask) return;
    viewCtx.imageSmoothingEnabled = true;
    viewCtx.imageSmoothingQuality = 'low'; // bilinear
    viewCtx.drawImage(overlay, 0, 0, view.width, view.height);
  }

  // The network's input squashed by the canvas: cheap, and close to cv2's INTER_AREA (camera frames, small photos).
  function canvasInput(source) {
    // transparent pixels read as black, as footseg reads them where a PNG stores them black, never as the picture before
    inputCtx.clearRect(0, 0, w, h);
    inputCtx.drawImage(source, 0, 0, w, h);
    return toInput(inputCtx.getImageData(0, 0, w, h).data, w, h);
  }

  // The camera's current frame into ``frame`` (at its own size, up to the view's most).
  function grabFrame() {
    const [width, height] = fitArea(video.videoWidth, video.videoHeight, MAX_VIEW_AREA);
    if (frame.width !== width || frame.height !== height) {
      frame.width = width;
      frame.height = height;
    }
    frameCtx.drawImage(video, 0, 0, width, height);
    return frame;
  }

  // The network's input from a photo: exactly footseg's resize_image where the photo shrinks (a photo is segmented
  // once, so its full pixels are worth reading), the browser's own filter where it is smaller than the input. Its
  // pixels are read a strip of rows at a time, each strip as large as a canvas may be: a 24-megapixel iPhone photo is
  // larger than iOS allows one canvas to be.
  async function photoInput(image) {
    const [width, height] = [image.naturalWidth, image.naturalHeight];
    if (width < w || height < h) return canvasInput(image);
    const rows = Math.min(height, Math.max(1, Math.floor(MAX_CANVAS_AREA / width)));
    if (rows < height && !(await cropsUpright())) return scaledPhotoInput(image);
    const strip = makeCanvas(width, rows);
    try {
      const stripCtx = strip.getContext('2d', { willReadFrequently: true });
      let first = 0;
      let pixels = null;
      const rowAt = (y) => {
        if (pixels === null || y < first || y >= first + rows) {
          first = y;
          const n = Math.min(rows, height - y);
          stripCtx.clearRect(0, 0, width, rows);
          if (n === height) stripCtx.drawImage(image, 0, 0); // the whole photo, upright
          else stripCtx.drawImage(image, 0, y, width, n, 0, 0, width, n); // rows y to y + n of the upright photo
          pixels = stripCtx.getImageData(0, 0, width, n).data;
        }
        return [pixels, 4 * width * (y - first)];
      };
      return toInput(areaResize(rowAt, width, height, w, h), w, h);
    } finally {
      freeCanvas(strip); // tens of MB for a phone photo
    }
  }

  // Where the browser crops a turned photo wrongly: the photo scaled to fit one canvas, then shrunk (close to
  // footseg's input, not to the byte).
  function scaledPhotoInput(image) {
    const [width, height] = fitArea(image.naturalWidth, image.naturalHeight);
    const full = makeCanvas(width, height);
    try {
      const fullCtx = full.getContext('2d', { willReadFrequently: true });
      fullCtx.drawImage(image, 0, 0, width, height);
      const pixels = fullCtx.getImageData(0, 0, width, height).data;
      return toInput(areaResize((y) => [pixels, 4 * width * y], width, height, w, h), w, h);
    } finally {
      freeCanvas(full);
    }
  }

  async function segment(source) {
    const t0 = performance.now();
    const still = source !== video;
    const pixels = still ? await photoInput(source) : canvasInput(grabFrame());
    const { prob, prior } = await (still ? segmenter.still(pixels) : segmenter.step(pixels));
    if (!still && lost) return; // the camera went while this frame was segmented: its picture may be black
    const mask = paintMask(prob, overlayPixels.data, footseg.threshold);
    overlayCtx.putImageData(overlayPixels, 0, 0);
    // Set together, so a reader sees one frame's input, prior and mask.
    Object.assign(footseg, { lastMask: mask, lastInput: pixels, lastPrior: prior, lastProb: prob });
    const ms = performance.now() - t0;
    if (still) {
      const [width, height] = sizeOf(source);
      footseg.photo = { name: photoName, width, height, ms };
      footseg.photos += 1;
      stats.textContent = `${photoName} · ${width}x${height} · ${ms.toFixed(0)} ms\n${footseg.precision} · photo`;
      return;
    }
    footseg.frames += 1;
    record(ms, !opening);
    footseg.onFrame?.(footseg); // a benchmark's hook (footseg bench --browser): sees every frame, none skipped
  }

  // The one way a picture is segmented (the live loop, the photo button and an opened photo alike): never two
  // steps at once, which would interleave the video state.
  function segmentNow(source = video) {
    busy = segment(source).finally(() => { busy = null; });
    return busy;
  }

  let restart = false; // the next frame starts the video state afresh (set when the page comes back into view)

  function onFrame() {
    if (!frozen) {
      if (busy === null) {
        if (restart) {
          segmenter.state.reset(); // here, between steps: never under a step in flight
          restart = false;
        }
        // The frame is drawn with its own mask once that is ready. Where inference is slower than the camera, the
        // frames that come meanwhile are skipped: the view shows fewer frames, each under its own mask.
        segmentNow()
          .then(() => { if (!frozen && !lost) draw(); })
          .catch((error) => fail('error', `segmentation failed (${error?.message ?? error})`));
      }
    }
    schedule();
  }

  // Without requestVideoFrameCallback the display's refresh (often 60 Hz) drives the loop; only a new camera frame
  // counts as a frame, so the video state steps once per camera frame, as footseg's Python runtime steps it. A camera's
  // currentTime runs on with the clock between its frames (Chromium): the count of frames the video has had says
  // when one came, where the browser keeps it.
  let shownFrame = -1;
  function frameMark() {
    return video.getVideoPlaybackQuality?.().totalVideoFrames || video.currentTime;
  }
  function onDisplayFrame() {
    const mark = frameMark();
    if (mark === shownFrame) {
      schedule();
      return;
    }
    shownFrame = mark;
    onFrame();
  }

  function schedule() {
    if (footseg.errors.length) return;
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(onFrame);
    else requestAnimationFrame(onDisplayFrame);
  }

  async function photo() {
    if (frozen) {
      frozen = false;
      shown = video;
      footseg.photo = null;
      saveButton.hidden = true;
      if ($('message').dataset.kind === 'bad-photo') $('message').hidden = true;
      photoButton.textContent = 'Photo';
      // The camera starts again as a new video: smoothing with (or a prior from) a frame of before the pause would
      // pull the first frames towards a picture no longer there.
      segmenter.state.reset();
      await video.play();
      return;
    }
    frozen = true;
    photoButton.textContent = 'Resume';
    video.pause();
    while (busy !== null) await busy.catch(() => {});
    // The frozen frame gets its own mask, so the photo and its mask are the same instant.
    await segmentNow();
    draw();
    // Saved at once, and again with Save mask (a download the browser blocked or the user dismissed is not lost).
    photoName = `footseg-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await savePhotoMask();
    saveButton.hidden = false;
    stats.textContent = `Photo · its mask saved (${video.videoWidth}x${video.videoHeight})\nResume for the camera`;
  }

  // An opened photo replaces the camera's picture (which pauses) until Resume; its mask is saved on request, at the
  // photo's own size.
  async function openPhoto(file) {
    const before = stats.textContent;
    stats.textContent = `Opening ${file.name}…`;
    let image;
    // The camera's frames go on while the photo decodes, and the one in flight ends after it: they leave this line.
    opening = true;
    try {
      try {
        image = await decodePhoto(file);
      } catch (error) {
        stats.textContent = before;
        throw error;
      }
      if (live && !frozen) {
        frozen = true;
        video.pause();
        photoButton.textContent = 'Resume';
      }
      while (busy !== null) await busy.catch(() => {});
    } finally {
      opening = false;
    }
    photoName = file.name;
    shown = image;
    // Reading a phone's photo at full size takes a second or more (48 megapixels: 1.4 s on a laptop's CPU), in which
    // the page cannot paint: the photo and what is happening are shown first.
    stats.textContent = `Segmenting ${file.name} · ${image.naturalWidth}x${image.naturalHeight}…`;
    draw(false);
    await painted();
    await segmentNow(image);
    $('message').hidden = true;
    draw();
    saveButton.hidden = false;
  }

  async function savePhotoMask() {
    const [width, height] = sizeOf(shown); // the photo's own size, however large: no canvas holds the mask
    const stem = photoName.replace(/\.[^.]*$/, '') || 'photo';
    // named as footseg predict names a photo's mask
    await download(maskPng(footseg.lastProb, w, h, width, height, footseg.threshold), `${stem}_mask.png`);
  }

  // One action at a time: the buttons wait while a photo is opened, segmented or saved.
  let acting = false;
  function act(action) {
    if (acting) return Promise.resolve();
    acting = true;
    const buttons = [openButton, photoButton, saveButton];
    buttons.forEach((button) => { button.disabled = true; });
    return action()
      .catch((error) => fail('error', error?.message ?? String(error)))
      .finally(() => {
        acting = false;
        buttons.forEach((button) => { button.disabled = false; });
      });
  }

  function openFile(file) {
    act(() => openPhoto(file).catch((error) => {
      if (error?.kind !== 'bad-photo') throw error;
      // A file that is no picture stops nothing: it is named, and the page carries on as it was.
      footseg.warnings.push(error.message);
      showMessage('bad-photo', error.message);
    }));
  }

  photoButton.addEventListener('click', () => act(photo));
  openButton.addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    const [file] = fileInput.files;
    fileInput.value = ''; // the same file may be opened again
    if (file) openFile(file);
  });
  saveButton.addEventListener('click', () => act(savePhotoMask));
  openDropped = openFile;
  openButton.disabled = false;
  photoButton.hidden = true; // until there is a camera to photograph
  footseg.ready = true;

  function goLive() {
    live = true;
    stats.textContent = '';
    if (shown === null) {
      shown = video;
    } else { // a photo opened while the camera was starting stays up; the camera waits behind it, as after Open photo
      frozen = true;
      video.pause();
      photoButton.textContent = 'Resume';
    }
    // A phone that locks or switches apps stops the camera's frames. Back on the page, the next frame starts the video
    // state afresh (a frame from minutes ago is no previous frame), and the video plays again (iOS leaves it paused).
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible' || frozen) return;
      restart = true;
      video.play().catch(() => {});
    });
    // The camera taken away while the page runs (another app, the permission withdrawn, a camera unplugged): the page
    // says so instead of showing the last frame forever, and still opens photos.
    video.srcObject.getVideoTracks().forEach((track) => track.addEventListener('ended', () => {
      lost = true;
      footseg.errors.push(MESSAGES['camera-lost']);
      showMessage('camera-lost', MESSAGES['camera-lost'] + PHOTO_HINT);
      stats.textContent = '';
      photoButton.hidden = true;
      saveButton.hidden = !frozen && footseg.photo === null; // a photo taken or opened keeps its mask to save
    }));
    photoButton.hidden = false;
    photoButton.disabled = acting;
    schedule();
  }
  return { goLive };
}

// The view needs no more pixels than a screen has.
const MAX_VIEW_AREA = 2048 * 2048;

async function download(blobPromise, name) {
  const blob = await blobPromise;
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

main().catch((error) => fail('error', error?.message ?? String(error)));

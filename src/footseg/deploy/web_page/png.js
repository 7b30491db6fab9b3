// A mask as a PNG file at any size: a photo's own (24 megapixels from an iPhone, 50 from some Androids), which a
// canvas cannot hold (iOS Safari refuses one over 16.7 megapixels). Rows are made one block at a time and compressed
// by the browser's own zlib (CompressionStream); only the PNG's framing is written here.

const SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
const BLOCK_BYTES = 1 << 20; // rows handed to the compressor at a time

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes, crc = 0xffffffff) {
  let c = crc;
  for (let i = 0; i < bytes.length; i += 1) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c;
}

// One PNG chunk: length, type, data, and the CRC of type and data.
function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  const name = new TextEncoder().encode(type);
  out.set(name, 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, (crc32(data, crc32(name)) ^ 0xffffffff) >>> 0);
  return out;
}

// A (height, width) 8-bit grey PNG whose row y is written by `row(y, out)` into `out` (width bytes).
export async function greyPng(width, height, row) {
  if (typeof CompressionStream === 'undefined') {
    throw new Error('this browser cannot write the mask as PNG (no CompressionStream): update it');
  }
  const deflate = new CompressionStream('deflate'); // zlib, as PNG's IDAT holds it
  const compressed = new Response(deflate.readable).arrayBuffer();
  const writer = deflate.writable.getWriter();
  const stride = width + 1; // each row starts with its filter type: 0, none
  const rows = Math.max(1, Math.floor(BLOCK_BYTES / stride));
  try {
    for (let y = 0; y < height; y += rows) {
      const n = Math.min(rows, height - y);
      const block = new Uint8Array(n * stride);
      for (let k = 0; k < n; k += 1) row(y + k, block.subarray(k * stride + 1, (k + 1) * stride));
      await writer.write(block);
    }
    await writer.close();
  } catch (error) {
    writer.abort(error).catch(() => {}); // the stream let go; its reader's rejection is this error, raised here
    compressed.catch(() => {});
    throw error;
  }
  const header = new Uint8Array(13);
  const fields = new DataView(header.buffer);
  fields.setUint32(0, width);
  fields.setUint32(4, height);
  header[8] = 8; // bits per sample; colour type 0 (grey), deflate, no filter method, no interlace: zeros
  const idat = new Uint8Array(await compressed);
  return new Blob([SIGNATURE, chunk('IHDR', header), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))],
    { type: 'image/png' });
}

// The (h, w) probability resized to (outH, outW) (bilinear, pixel centres aligned as in cv2.resize), then thresholded
// at the model's threshold (foot 255, floor 0), as footseg's Predictor makes a mask at the photo's own size.
export function maskPng(prob, w, h, outW, outH, threshold) {
  const bound = Math.fround(threshold); // as numpy compares a float32 map
  const sx = w / outW;
  const sy = h / outH;
  const left = new Int32Array(outW);
  const right = new Int32Array(outW);
  const weight = new Float64Array(outW);
  for (let x = 0; x < outW; x += 1) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
    left[x] = Math.floor(fx);
    right[x] = Math.min(left[x] + 1, w - 1);
    weight[x] = fx - left[x];
  }
  return greyPng(outW, outH, (y, out) => {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const wy = fy - y0;
    for (let x = 0; x < outW; x += 1) {
      const wx = weight[x];
      const top = prob[y0 * w + left[x]] * (1 - wx) + prob[y0 * w + right[x]] * wx;
      const bottom = prob[y1 * w + left[x]] * (1 - wx) + prob[y1 * w + right[x]] * wx;
      out[x] = top * (1 - wy) + bottom * wy > bound ? 255 : 0;
    }
  });
}

// A minimal PNG encoder (8-bit RGB, no interlace, zlib from node:zlib) for looking at the embedded world and at
// samples. Images are CHW Float32Arrays in [-1, 1]; `imageGrid` tiles several into one.
import { deflateSync } from 'node:zlib';
import { pngChunk as chunk } from '../share/png-text.ts';

/** PNG bytes of a [3, height, width] image in [-1, 1] (values outside are clipped). */
export function encodePng(chw: Float32Array, width: number, height: number): Uint8Array {
  if (chw.length !== 3 * width * height) throw new RangeError(`encodePng: ${chw.length} values is not 3×${height}×${width}`);
  const plane = width * height;
  const raw = new Uint8Array(height * (1 + 3 * width));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = chw[c * plane + y * width + x];
        raw[y * (1 + 3 * width) + 1 + 3 * x + c] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
      }
    }
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array())];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) (out.set(p, offset), (offset += p.length));
  return out;
}

/** Tiles [3, size, size] images row-major into `columns` columns, upscaled by `scale` (nearest), with a 1-px gray gutter. */
export function imageGrid(images: Float32Array[], size: number, columns: number, scale = 1): { image: Float32Array; width: number; height: number } {
  const rows = Math.ceil(images.length / columns);
  const cell = size * scale + 1;
  const width = columns * cell + 1, height = rows * cell + 1;
  const plane = width * height;
  const image = new Float32Array(3 * plane).fill(0);
  images.forEach((img, k) => {
    const ox = (k % columns) * cell + 1, oy = Math.floor(k / columns) * cell + 1;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < size * scale; y++) {
        for (let x = 0; x < size * scale; x++) {
          image[c * plane + (oy + y) * width + ox + x] = img[c * size * size + Math.floor(y / scale) * size + Math.floor(x / scale)];
        }
      }
    }
  });
  return { image, width, height };
}

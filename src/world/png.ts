// A minimal PNG encoder (8-bit RGB, no interlace, zlib from node:zlib; the layout is src/share/png-encode.ts's) for looking at the embedded world and at
// samples. Images are CHW Float32Arrays in [-1, 1]; `imageGrid` tiles several into one.
import { deflateSync } from 'node:zlib';
import { assemblePng, chwToScanlines } from '../share/png-encode.ts';

/** PNG bytes of a [3, height, width] image in [-1, 1] (values outside are clipped). */
export function encodePng(chw: Float32Array, width: number, height: number): Uint8Array {
  return assemblePng(width, height, deflateSync(chwToScanlines(chw, width, height)));
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

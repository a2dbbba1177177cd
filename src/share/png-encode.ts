// PNG files of model images (8-bit RGB, no interlace, filter 0 on every row), in any JavaScript runtime: the zlib
// stream comes from the platform's CompressionStream('deflate') (browsers, Node ≥ 18). The page uses it for the
// dataset export (pairs leave as PNG bytes that PIL's Image.open decodes); src/world/png.ts, Node only, shares the
// layout below and deflates synchronously with node:zlib.
import { pngChunk } from './png-text.ts';

const SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

/** PNG scanlines (a 0 filter byte, then R, G, B per pixel) of a [3, H, W] image in [-1, 1], clipped, rounded. */
export function chwToScanlines(chw: Float32Array, width: number, height: number): Uint8Array {
  if (chw.length !== 3 * width * height) throw new RangeError(`PNG: ${chw.length} values is not 3×${height}×${width}`);
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
  return raw;
}

/** Signature, IHDR (8-bit truecolour), one IDAT holding the zlib stream, IEND. */
export function assemblePng(width: number, height: number, zlibStream: Uint8Array): Uint8Array {
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 2, 0, 0, 0], 8);
  const parts = [SIGNATURE, pngChunk('IHDR', header), pngChunk('IDAT', zlibStream), pngChunk('IEND', new Uint8Array())];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) (out.set(p, offset), (offset += p.length));
  return out;
}

/** PNG bytes of a [3, height, width] image in [-1, 1], deflated by the platform's CompressionStream. */
export async function encodePngAsync(chw: Float32Array, width: number, height: number): Promise<Uint8Array> {
  const stream = new Blob([chwToScanlines(chw, width, height) as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('deflate'));
  return assemblePng(width, height, new Uint8Array(await new Response(stream).arrayBuffer()));
}

// Model output → pixels. The embedded model works in pixel space with values in [-1, 1] (as diffusers'
// VaeImageProcessor.postprocess expects after decoding): rgb = clamp((x + 1) / 2) · 255, planar CHW → interleaved RGBA.

export function chwToRgba(chw: Float32Array, channels: number, height: number, width: number): Uint8ClampedArray {
  const plane = height * width;
  if (chw.length !== channels * plane) throw new RangeError(`image: expected ${channels}×${height}×${width} values, got ${chw.length}`);
  const rgba = new Uint8ClampedArray(plane * 4);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round(((chw[Math.min(c, channels - 1) * plane + p] + 1) / 2) * 255);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

/** Side of the low-resolution previews shown while sampling: images are block-averaged down to about this size. */
export const PREVIEW_SIDE = 16;

/** The block size that brings an image down to about PREVIEW_SIDE pixels (1: already that small). */
export function previewFactor(height: number, width: number): number {
  return Math.max(1, Math.floor(Math.min(height, width) / PREVIEW_SIDE));
}

/**
 * Block means over factor×factor pixels per channel of a [channels, height, width] image; rows and columns past the
 * last whole block are dropped. The CPU loop's previews, and the reference of sampler.wgsl's `preview`.
 */
export function downsampleBlocks(chw: Float32Array, channels: number, height: number, width: number, factor: number): Float32Array {
  const [oh, ow] = [Math.floor(height / factor), Math.floor(width / factor)];
  const out = new Float32Array(channels * oh * ow);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        let sum = 0;
        for (let dy = 0; dy < factor; dy++) {
          for (let dx = 0; dx < factor; dx++) sum += chw[(c * height + y * factor + dy) * width + x * factor + dx];
        }
        out[(c * oh + y) * ow + x] = sum / (factor * factor);
      }
    }
  }
  return out;
}

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

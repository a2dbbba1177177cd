// Page pixels ↔ model values, and the compare view's difference image. RGBA bytes map to the model's [-1, 1] as
// v = b/127.5 − 1 (diffusers' VaeImageProcessor.normalize; the same mapping pairs.json uses).

/** Interleaved RGBA bytes → planar [3, H, W] float32 in [-1, 1]. */
export function rgbaToChw(rgba: Uint8ClampedArray | Uint8Array, width: number, height: number): Float32Array {
  const plane = width * height;
  if (rgba.length !== plane * 4) throw new RangeError(`rgbaToChw: expected ${width}×${height}×4 bytes, got ${rgba.length}`);
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = rgba[p * 4 + c] / 127.5 - 1;
  return out;
}

/** |a − b| per channel, times `gain` (clipped at 255), opaque: small differences become visible. */
export function differenceRgba(a: Uint8ClampedArray, b: Uint8ClampedArray, gain: number): Uint8ClampedArray {
  if (a.length !== b.length) throw new RangeError(`differenceRgba: images differ in size (${a.length} vs ${b.length} bytes)`);
  const out = new Uint8ClampedArray(a.length);
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) out[i + c] = Math.abs(a[i + c] - b[i + c]) * gain;
    out[i + 3] = 255;
  }
  return out;
}

// Image helpers for the procedural reward: planar RGB in [0, 1] from the model's CHW [-1, 1] format, colour distance,
// HSV saturation, box blur, 3×3 median, and 4-connected components. Plain loops over 32×32 images.
export interface Rgb01 { r: Float32Array; g: Float32Array; b: Float32Array; size: number }

export function toRgb01(chw: Float32Array): Rgb01 {
  const plane = chw.length / 3;
  const size = Math.round(Math.sqrt(plane));
  if (size * size * 3 !== chw.length) throw new RangeError(`reward: expected a [3, S, S] image, got ${chw.length} values`);
  const channel = (c: number) => Float32Array.from(chw.subarray(c * plane, (c + 1) * plane), (v) => Math.min(1, Math.max(0, (v + 1) / 2)));
  return { r: channel(0), g: channel(1), b: channel(2), size };
}

export function distanceTo(img: Rgb01, i: number, c: readonly number[]): number {
  return Math.hypot(img.r[i] - c[0], img.g[i] - c[1], img.b[i] - c[2]);
}

/** HSV saturation (max − min)/max, 0 for black. */
export function saturation(r: number, g: number, b: number): number {
  const max = Math.max(r, g, b);
  return max <= 1e-6 ? 0 : (max - Math.min(r, g, b)) / max;
}

/** Mean over a (2k+1)-wide window along one axis, edges clamped. */
export function boxBlur1d(plane: Float32Array, size: number, k: number, axis: 'x' | 'y'): Float32Array {
  const out = new Float32Array(plane.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      for (let d = -k; d <= k; d++) {
        const xx = axis === 'x' ? Math.min(size - 1, Math.max(0, x + d)) : x;
        const yy = axis === 'y' ? Math.min(size - 1, Math.max(0, y + d)) : y;
        sum += plane[yy * size + xx];
      }
      out[y * size + x] = sum / (2 * k + 1);
    }
  }
  return out;
}

/** 3×3 median, edges clamped. */
export function median3(plane: Float32Array, size: number): Float32Array {
  const out = new Float32Array(plane.length);
  const window = new Float32Array(9);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          window[n++] = plane[Math.min(size - 1, Math.max(0, y + dy)) * size + Math.min(size - 1, Math.max(0, x + dx))];
        }
      }
      out[y * size + x] = window.sort()[4];
    }
  }
  return out;
}

/** Sizes of the 4-connected components of a boolean mask. */
export function componentSizes(mask: Uint8Array, size: number): number[] {
  const seen = new Uint8Array(mask.length);
  const sizes: number[] = [];
  const stack: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let count = 0;
    stack.push(start);
    seen[start] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      count++;
      const x = i % size, y = (i - x) / size;
      for (const [nx, ny] of [[x - 1, y], [x + 1, y], [x, y - 1], [x, y + 1]]) {
        if (nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
        const j = ny * size + nx;
        if (mask[j] && !seen[j]) (seen[j] = 1), stack.push(j);
      }
    }
    sizes.push(count);
  }
  return sizes;
}

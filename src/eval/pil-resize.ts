// Pillow's bicubic resize of 8-bit RGB images, bit for bit: transformers' CLIPImageProcessor resizes through
// PIL.Image.resize(resample=BICUBIC, reducing_gap=None), so a CLIP score equals PyTorch's only if the resized pixels do.
// Port of Pillow's libImaging/Resample.c (9.x–11.x, unchanged there): separable convolution, horizontal pass first into
// an 8-bit intermediate, the filter widened by the scale when shrinking (antialiasing), coefficients normalised to sum 1
// and then rounded to 22-bit fixed point (PRECISION_BITS = 32 - 8 - 2), accumulators start at one half and are clipped
// to 0..255 after an arithmetic shift.

const PRECISION_BITS = 32 - 8 - 2;
const BICUBIC_SUPPORT = 2;

/** Keys' cubic convolution with a = -0.5 (Resample.c bicubic_filter). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coefficients { ksize: number; bounds: Int32Array; kk: Int32Array }

/** Resample.c precompute_coeffs + normalize_coeffs_8bpc for a whole axis (box = the whole input). */
function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const weights = new Float64Array(ksize);
  const ss = 1 / filterscale; // multiplied, not divided, as Resample.c does (the last bit matters)
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      weights[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += weights[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? weights[x] / ww : weights[x];
      kk[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** clip8: the fixed-point sum back to a byte (Resample.c's lookup table is exactly this clamp). */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** One pass along x (stride 3 per pixel inside a row) or y (stride 3·width), for every output position. */
function pass(src: Uint8Array, width: number, height: number, outW: number, outH: number, horizontal: boolean): Uint8Array {
  const c = coefficients(horizontal ? width : height, horizontal ? outW : outH);
  const out = new Uint8Array(outW * outH * 3);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = horizontal ? x : y;
      const xmin = c.bounds[o * 2];
      const n = c.bounds[o * 2 + 1];
      const base = horizontal ? (y * width + xmin) * 3 : (xmin * width + x) * 3;
      const step = horizontal ? 3 : width * 3;
      for (let ch = 0; ch < 3; ch++) {
        let sum = half;
        for (let k = 0; k < n; k++) sum += src[base + k * step + ch] * c.kk[o * c.ksize + k];
        out[(y * outW + x) * 3 + ch] = clip8(sum);
      }
    }
  }
  return out;
}

/** PIL `Image.resize((outW, outH), Image.BICUBIC)` of packed 8-bit RGB (row-major, 3 bytes a pixel). */
export function resizeBicubicRgb(rgb: Uint8Array, width: number, height: number, outW: number, outH: number): Uint8Array {
  if (rgb.length !== width * height * 3) throw new Error(`resize: ${rgb.length} bytes is not ${width}×${height} RGB`);
  if (!(outW >= 1 && outH >= 1 && Number.isInteger(outW) && Number.isInteger(outH))) throw new Error(`resize: bad output size ${outW}×${outH}`);
  const wide = outW !== width ? pass(rgb, width, height, outW, height, true) : rgb;
  return outH !== height ? pass(wide, outW, height, outW, outH, false) : wide === rgb ? rgb.slice() : wide;
}

// Training images at the training resolution, prepared exactly as diffusers' train_diffusion_dpo.py does:
//   transforms.Resize(resolution, BILINEAR) → transforms.CenterCrop(resolution) → ToTensor → Normalize([0.5], [0.5])
// on a PIL image (`Image.open(...).convert("RGB")`). torchvision hands PIL images to PIL's own `Image.resize`, so the
// resize here is Pillow's two-pass separable bilinear filter (libImaging/Resample.c): a triangle kernel widened by the
// scale when shrinking (antialiasing), weights normalised per output pixel, 22-bit fixed point, horizontal pass then
// vertical, each rounded to 8 bits. A browser canvas or an image library resamples differently, hence our own.
// The output is 8-bit RGB, as PIL's. The script's default is no RandomCrop (random_crop=False); its
// RandomHorizontalFlip (on unless --no_hflip) is not done here but per draw, when asked: train-lora.ts's `hflip`.

import type { ImageSource } from './pairs.ts';

/** Decoded pixels, RGBA 8-bit, row-major (what getImageData and image decoders give). */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/** torchvision's Resize(size) for an int size: the shorter side becomes `size`, the longer int(size · long / short). */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** Python's round(): halves go to the even neighbour (torchvision's CenterCrop rounds its offsets this way). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Where CenterCrop starts in the resized image, with the original size: SDXL's micro-conditioning for this image
 * (train_diffusion_dpo_sdxl.py: original_size = the image's (height, width) before Resize, crop_top_left = (y1, x1)
 * with y1 = max(0, int(round((resized height − resolution) / 2.0))), likewise x1).
 */
export function trainingCrop(width: number, height: number, size: number): ImageSource {
  const target = resizedSize(width, height, size);
  return { width, height, cropTop: Math.max(0, roundHalfEven((target.height - size) / 2)), cropLeft: Math.max(0, roundHalfEven((target.width - size) / 2)) };
}

/**
 * Resize + CenterCrop: size × size RGB bytes, interleaved, row-major (pairs.json's rgb8, which maps bytes to the model's
 * [-1, 1] as ToTensor + Normalize([0.5], [0.5]) do: b/127.5 − 1). Alpha is dropped, as convert("RGB") does.
 */
export function prepareTrainingImage(image: RgbaImage, size: number): Uint8Array {
  const { width, height, data } = image;
  if (!(width > 0 && height > 0) || data.length !== width * height * 4) {
    throw new Error(`an image of ${width}×${height} needs ${width * height * 4} RGBA bytes, got ${data.length}`);
  }
  const target = resizedSize(width, height, size);
  const resized = resampleBilinear(image, target.width, target.height);
  const { cropTop: top, cropLeft: left } = trainingCrop(width, height, size);
  const out = new Uint8Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    const from = ((y + top) * target.width + left) * 3;
    out.set(resized.subarray(from, from + 3 * size), y * size * 3);
  }
  return out;
}

const PRECISION_BITS = 32 - 8 - 2;

/** Pillow's precompute_coeffs for the bilinear filter, then normalize_coeffs_8bpc: per output pixel, the first input
 * index and integer weights. */
function coefficients(inSize: number, outSize: number): { first: Int32Array; weights: Int32Array[] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(1, scale);
  const support = filterScale; // bilinear support 1, widened when shrinking
  const first = new Int32Array(outSize);
  const weights: Int32Array[] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = new Float64Array(Math.max(0, xmax));
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) / filterScale);
      k[x] = t < 1 ? 1 - t : 0;
      sum += k[x];
    }
    const fixed = new Int32Array(k.length);
    for (let x = 0; x < k.length; x++) {
      const w = sum !== 0 ? k[x] / sum : k[x];
      fixed[x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    first[xx] = xmin;
    weights.push(fixed);
  }
  return { first, weights };
}

function clip8(sum: number): number {
  const v = Math.floor(sum / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Pillow's Image.resize(…, BILINEAR) on an RGB image: RGB bytes, row-major, outWidth × outHeight. */
export function resampleBilinear(image: RgbaImage, outWidth: number, outHeight: number): Uint8Array {
  const { width, height, data } = image;
  // horizontal pass (skipped when the width stays, as Pillow does), into RGB rows
  const horizontal = new Uint8Array(outWidth * height * 3);
  const h = width === outWidth ? undefined : coefficients(width, outWidth);
  for (let y = 0; y < height; y++) {
    for (let xx = 0; xx < outWidth; xx++) {
      for (let c = 0; c < 3; c++) {
        if (!h) {
          horizontal[(y * outWidth + xx) * 3 + c] = data[(y * width + xx) * 4 + c];
          continue;
        }
        const k = h.weights[xx];
        let ss = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < k.length; x++) ss += data[(y * width + h.first[xx] + x) * 4 + c] * k[x];
        horizontal[(y * outWidth + xx) * 3 + c] = clip8(ss);
      }
    }
  }
  if (height === outHeight) return horizontal;
  const out = new Uint8Array(outWidth * outHeight * 3);
  const v = coefficients(height, outHeight);
  for (let yy = 0; yy < outHeight; yy++) {
    const k = v.weights[yy];
    for (let i = 0; i < outWidth * 3; i++) {
      let ss = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < k.length; y++) ss += horizontal[(v.first[yy] + y) * outWidth * 3 + i] * k[y];
      out[yy * outWidth * 3 + i] = clip8(ss);
    }
  }
  return out;
}

// CLIPImageProcessor (transformers 4.41 image_processing_clip.py) in TypeScript: resize the shortest side (PIL bicubic,
// on 8-bit pixels), centre-crop, rescale by 1/255, normalise by the mean and std, all in float32 as numpy does there.
// transformers.js' own processor resizes with a canvas in browsers (not PIL's filter) and with sharp in Node, so the
// page and Node would disagree; this port makes both equal PyTorch's pixel_values. The config is user input
// (`preprocessor_config.json`): every field used is checked.
import { resizeBicubicRgb } from './pil-resize.ts';

export interface ClipImageConfig {
  /** Resize so the shorter side is this long (transformers' `size.shortest_edge`), or to exactly height × width. */
  resize?: { shortestEdge: number } | { height: number; width: number };
  crop?: { height: number; width: number };
  rescale?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
}

const PIL_BICUBIC = 3;

function positiveInt(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 4096) throw new Error(`preprocessor_config.json: ${where} must be an integer from 1 to 4096, got ${JSON.stringify(value)}`);
  return value;
}

function triple(value: unknown, where: string): [number, number, number] {
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) throw new Error(`preprocessor_config.json: ${where} must be three numbers`);
  return value as [number, number, number];
}

/** transformers' get_size_dict: an int is the shortest edge (CLIP's default_to_square=False) or a square crop. */
function sizeOf(value: unknown, where: string, square: boolean): ClipImageConfig['resize'] {
  if (typeof value === 'number') return square ? { height: positiveInt(value, where), width: value } : { shortestEdge: positiveInt(value, where) };
  const v = value as Record<string, unknown> | null;
  if (v && typeof v === 'object' && 'shortest_edge' in v && !square) return { shortestEdge: positiveInt(v.shortest_edge, `${where}.shortest_edge`) };
  if (v && typeof v === 'object' && 'height' in v) return { height: positiveInt(v.height, `${where}.height`), width: positiveInt(v.width, `${where}.width`) };
  throw new Error(`preprocessor_config.json: ${where} must be a number, {shortest_edge} or {height, width}`);
}

/** Reads `preprocessor_config.json` (a CLIPImageProcessor's; transformers' defaults where a key is absent). */
export function parseClipImageConfig(json: unknown): ClipImageConfig {
  if (!json || typeof json !== 'object') throw new Error('preprocessor_config.json is not a JSON object');
  const c = json as Record<string, unknown>;
  if (c.resample !== undefined && c.resample !== PIL_BICUBIC) throw new Error(`preprocessor_config.json: resample ${JSON.stringify(c.resample)} is not supported (only 3, bicubic, as CLIP uses)`);
  const crop = c.do_center_crop === false ? undefined : sizeOf(c.crop_size ?? 224, 'crop_size', true) as { height: number; width: number };
  return {
    resize: c.do_resize === false ? undefined : sizeOf(c.size ?? 224, 'size', false),
    crop,
    rescale: c.do_rescale === false ? undefined : typeof c.rescale_factor === 'number' ? c.rescale_factor : 1 / 255,
    mean: c.do_normalize === false ? undefined : triple(c.image_mean ?? [0.48145466, 0.4578275, 0.40821073], 'image_mean'),
    std: c.do_normalize === false ? undefined : triple(c.image_std ?? [0.26862954, 0.26130258, 0.27577711], 'image_std'),
  };
}

/** transformers' get_resize_output_image_size(default_to_square=False): [height, width]. */
export function resizedSize(height: number, width: number, resize: NonNullable<ClipImageConfig['resize']>): [number, number] {
  if ('height' in resize) return [resize.height, resize.width];
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((resize.shortestEdge * long) / short);
  return width <= height ? [newLong, resize.shortestEdge] : [resize.shortestEdge, newLong];
}

/** RGBA (canvas ImageData order) or RGB bytes to packed RGB: do_convert_rgb drops alpha as PIL's convert does for opaque images. */
export function toRgb(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number): Uint8Array {
  const channels = pixels.length / (width * height);
  if (channels === 3) return new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.length);
  if (channels !== 4) throw new Error(`CLIP: ${pixels.length} bytes is neither RGB nor RGBA for ${width}×${height}`);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < pixels.length; i += 4, j += 3) rgb.set(pixels.subarray(i, i + 3), j);
  return rgb;
}

/** The processor's pixel_values for one image: float32 [3, H, W] (channels first). */
export function clipPixelValues(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, config: ClipImageConfig): { data: Float32Array; height: number; width: number } {
  let rgb = toRgb(pixels, width, height);
  let [h, w] = [height, width];
  if (config.resize) {
    const [rh, rw] = resizedSize(h, w, config.resize);
    rgb = resizeBicubicRgb(rgb, w, h, rw, rh);
    [h, w] = [rh, rw];
  }
  let [top, left, ch, cw] = [0, 0, h, w];
  if (config.crop) {
    [ch, cw] = [config.crop.height, config.crop.width];
    if (ch > h || cw > w) throw new Error(`CLIP: the ${w}×${h} resized image is smaller than the ${cw}×${ch} crop (padding is not supported)`);
    // transformers' center_crop: top = (H - crop_h) // 2, left = (W - crop_w) // 2.
    [top, left] = [Math.floor((h - ch) / 2), Math.floor((w - cw) / 2)];
  }
  const f = Math.fround;
  const mean = config.mean?.map(f) ?? [0, 0, 0];
  const std = config.std?.map(f) ?? [1, 1, 1];
  const data = new Float32Array(3 * ch * cw);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        // rescale: uint8 × factor in float64, cast to float32; normalise: (x − mean) / std in float32.
        const v = rgb[((y + top) * w + x + left) * 3 + c];
        const scaled = config.rescale === undefined ? v : f(v * config.rescale);
        data[(c * ch + y) * cw + x] = config.mean ? f(f(scaled - mean[c]) / std[c]) : scaled;
      }
    }
  }
  return { data, height: ch, width: cw };
}

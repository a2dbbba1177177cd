// pairs.json: the preference pairs a LoRA is trained on (CLI `npm run train -- --pairs`, and the page's upload).
//
//   {
//     "version": 1,
//     "width": 32, "height": 32,                      // the model's image size; every image must have it
//     "pairs": [
//       { "prompt": "a red square",                    // the caption both images were made for
//         "preferred": "a",                            // "a" or "b": which image a person (or the reward) preferred
//         "a": { "encoding": "rgb8", "data": "<base64>" },
//         "b": { "encoding": "rgb8", "data": "<base64>" },
//         "source": { "width": 1024, "height": 768, "cropTop": 0, "cropLeft": 171 } }   // optional, see below
//     ]
//   }
//
// "source" (optional) says what the images were cut from: the original image's size and where the training crop starts
// in the resized image (pair-sources.ts writes it). SDXL training feeds it to the UNet as its micro-conditioning,
// time_ids = (original height, width, crop top, left, target height, width), as train_diffusion_dpo_sdxl.py does with
// the pair's jpg_0; without it, an uncropped image at the training size is assumed.
//
// Image encodings (all row-major, top row first, at width × height unless the image gives its own "width"/"height",
// which must then match):
//   "rgb8"         width·height·3 bytes, interleaved R,G,B (what a canvas's getImageData gives, minus alpha)
//   "rgba8"        width·height·4 bytes, interleaved R,G,B,A (getImageData as is); alpha is ignored
//   "float32-chw"  width·height·3 little-endian float32 values, planar C,H,W, in the model's range [-1, 1]
//                  (what the model itself produces: lossless for pipelines that write pairs from samples)
// Bytes map to model values as v = b/127.5 − 1 (diffusers' VaeImageProcessor.normalize). PNG data URLs are for the
// browser, which decodes them with a canvas before calling this parser; Node reads the raw forms without packages.
// NPO trains on the same file with --reverse: the pairs are not edited, the trainer swaps winner and loser.
import { TokenizerError } from '../embedded/tokenizer.ts';
import { jsonLimitProblem } from '../util/json-limits.ts';

export const PAIRS_VERSION = 1;
export type ImageEncoding = 'rgb8' | 'rgba8' | 'float32-chw';
export const IMAGE_ENCODINGS: readonly ImageEncoding[] = ['rgb8', 'rgba8', 'float32-chw'];

export interface EncodedImage {
  encoding: ImageEncoding;
  data: string; // base64
  width?: number;
  height?: number;
}

export interface PairsFile {
  version: 1;
  width: number;
  height: number;
  pairs: { prompt: string; preferred: 'a' | 'b'; a: EncodedImage; b: EncodedImage; source?: ImageSource }[];
}

/** The original image's size and the training crop's top-left corner in the resized image (SDXL's micro-conditioning). */
export interface ImageSource {
  width: number;
  height: number;
  cropTop: number;
  cropLeft: number;
}

/** A decoded pair: images as planar [3, H, W] float32 in [-1, 1]. */
export interface PreferencePair {
  prompt: string;
  winner: Float32Array;
  loser: Float32Array;
  source?: ImageSource;
}

export interface ParsePairsOptions {
  width: number;
  height: number;
  /** Throws when the model cannot read the prompt (the embedded tokenizer's `tokenize`). */
  checkPrompt?: (prompt: string) => void;
}

export class PairsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PairsError';
  }
}

/** Limits for a pairs file: 256 Mi characters (about 20 000 pairs of 512² rgb8 images) and 100 000 pairs. */
export const MAX_PAIRS_CHARS = 256 << 20;
export const MAX_PAIRS = 100_000;
const MAX_PROMPT_CHARS = 10_000;

export function parsePairs(text: string, options: ParsePairsOptions): PreferencePair[] {
  return decodePairs(readPairsJson(text), options);
}

/** The file's JSON value, its size and nesting bounded before parsing (a hostile file fails here, not in JSON.parse). */
function readPairsJson(text: string): unknown {
  const tooBig = jsonLimitProblem(text, { maxChars: MAX_PAIRS_CHARS });
  if (tooBig) throw new PairsError(`pairs file is refused: ${tooBig}`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new PairsError(`pairs file is not JSON: ${(error as Error).message}`);
  }
}

/**
 * For models that train at any size (prepared SD models): the file's own width × height, checked by `sizeFor` (which
 * returns the options to decode with, or throws) before any image is decoded; `pairs` is the number of entries the
 * file lists (not yet checked), so a caller can plan for the batch it will really run.
 */
export function parsePairsAtOwnSize(text: string, sizeFor: (width: number, height: number, pairs: number) => ParsePairsOptions): PreferencePair[] {
  const value = readPairsJson(text);
  if (!isObject(value)) throw new PairsError('pairs file must be a JSON object with "version", "width", "height" and "pairs"');
  const { width, height } = value;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || (width as number) < 1 || (height as number) < 1) {
    throw new PairsError(`pairs file: "width" and "height" must be positive integers, got ${JSON.stringify(width)}, ${JSON.stringify(height)}`);
  }
  return decodePairs(value, sizeFor(width as number, height as number, Array.isArray(value.pairs) ? value.pairs.length : 0));
}

export function decodePairs(value: unknown, options: ParsePairsOptions): PreferencePair[] {
  if (!isObject(value)) throw new PairsError('pairs file must be a JSON object with "version", "width", "height" and "pairs"');
  if (value.version !== PAIRS_VERSION) throw new PairsError(`pairs file: "version" must be ${PAIRS_VERSION}, got ${JSON.stringify(value.version)}`);
  const { width, height } = options;
  if (value.width !== width || value.height !== height) {
    throw new PairsError(`pairs file is for ${show(value.width)}×${show(value.height)} images; the model works at ${width}×${height}`);
  }
  if (!Array.isArray(value.pairs) || value.pairs.length === 0) throw new PairsError('pairs file: "pairs" must be a non-empty array');
  if (value.pairs.length > MAX_PAIRS) throw new PairsError(`pairs file has ${value.pairs.length} pairs; the limit is ${MAX_PAIRS}`);
  return value.pairs.map((pair, index) => decodePair(pair, index, options));
}

function decodePair(pair: unknown, index: number, options: ParsePairsOptions): PreferencePair {
  const where = `pair ${index}`;
  if (!isObject(pair)) throw new PairsError(`${where}: must be an object with "prompt", "preferred", "a" and "b"`);
  for (const key of ['prompt', 'preferred', 'a', 'b']) if (!(key in pair)) throw new PairsError(`${where}: missing field "${key}"`);
  if (typeof pair.prompt !== 'string') throw new PairsError(`${where}: "prompt" must be a string`);
  if (pair.prompt.length > MAX_PROMPT_CHARS) throw new PairsError(`${where}: "prompt" is ${pair.prompt.length} characters long; the limit is ${MAX_PROMPT_CHARS}`);
  if (pair.preferred !== 'a' && pair.preferred !== 'b') {
    throw new PairsError(`${where}: "preferred" must be "a" or "b", got ${JSON.stringify(pair.preferred)}`);
  }
  try {
    options.checkPrompt?.(pair.prompt);
  } catch (error) {
    const detail = error instanceof TokenizerError || error instanceof Error ? error.message : String(error);
    throw new PairsError(`${where}: the model cannot read the prompt ${JSON.stringify(pair.prompt)}: ${detail}`);
  }
  const a = decodeImage(pair.a, `${where}, image a`, options);
  const b = decodeImage(pair.b, `${where}, image b`, options);
  const source = pair.source === undefined ? {} : { source: decodeSource(pair.source, `${where}, "source"`) };
  return pair.preferred === 'a' ? { prompt: pair.prompt, winner: a, loser: b, ...source } : { prompt: pair.prompt, winner: b, loser: a, ...source };
}

/** Largest original side accepted in "source" (SDXL's own time_ids are pixel sizes of at most a few thousand). */
const MAX_SOURCE_SIDE = 1 << 16;

function decodeSource(value: unknown, where: string): ImageSource {
  if (!isObject(value)) throw new PairsError(`${where}: must be an object { "width", "height", "cropTop", "cropLeft" }`);
  const field = (key: keyof ImageSource, min: number) => {
    const v = value[key];
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > MAX_SOURCE_SIDE) {
      throw new PairsError(`${where}: "${key}" must be an integer from ${min} to ${MAX_SOURCE_SIDE}, got ${show(v)}`);
    }
    return v as number;
  };
  return { width: field('width', 1), height: field('height', 1), cropTop: field('cropTop', 0), cropLeft: field('cropLeft', 0) };
}

function decodeImage(image: unknown, where: string, { width, height }: ParsePairsOptions): Float32Array {
  if (!isObject(image)) throw new PairsError(`${where}: must be an object { "encoding", "data" }`);
  const { encoding, data } = image;
  if (!IMAGE_ENCODINGS.includes(encoding as ImageEncoding)) {
    throw new PairsError(`${where}: unknown "encoding" ${JSON.stringify(encoding)} (expected ${IMAGE_ENCODINGS.join(', ')})`);
  }
  if (typeof data !== 'string') throw new PairsError(`${where}: "data" must be a base64 string`);
  const w = image.width ?? width;
  const h = image.height ?? height;
  if (w !== width || h !== height) throw new PairsError(`${where}: the image is ${show(w)}×${show(h)}; the model works at ${width}×${height}`);
  const bytes = base64ToBytes(data, where);
  const plane = width * height;
  const perPixel = encoding === 'rgb8' ? 3 : encoding === 'rgba8' ? 4 : 12;
  if (bytes.byteLength !== plane * perPixel) {
    throw new PairsError(`${where}: ${encoding} at ${width}×${height} needs ${plane * perPixel} bytes, got ${bytes.byteLength}${guessSize(bytes.byteLength, perPixel)}`);
  }
  const out = new Float32Array(3 * plane);
  if (encoding === 'float32-chw') {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    const bad = out.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new PairsError(`${where}: value ${bad} (channel ${Math.floor(bad / plane)}, pixel ${bad % plane}) is ${out[bad]}`);
    return out;
  }
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = bytes[p * perPixel + c] / 127.5 - 1;
  return out;
}

/** A hint for the common mistake: an image of another square size. */
function guessSize(bytes: number, perPixel: number): string {
  const side = Math.sqrt(bytes / perPixel);
  return Number.isInteger(side) ? ` (a ${side}×${side} image?)` : '';
}

function base64ToBytes(text: string, where: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new PairsError(`${where}: "data" is not valid base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** Planar [3, H, W] in [-1, 1] → an encoded image (rgb8 rounds to bytes; float32-chw is lossless). */
export function encodeImage(chw: Float32Array, width: number, height: number, encoding: 'rgb8' | 'float32-chw' = 'rgb8'): EncodedImage {
  const plane = width * height;
  if (chw.length !== 3 * plane) throw new PairsError(`encodeImage: expected 3×${height}×${width} values, got ${chw.length}`);
  if (encoding === 'float32-chw') return { encoding, data: bytesToBase64(new Uint8Array(Float32Array.from(chw).buffer)) };
  const bytes = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) bytes[p * 3 + c] = Math.max(0, Math.min(255, Math.round((chw[c * plane + p] + 1) * 127.5)));
  return { encoding, data: bytesToBase64(bytes) };
}

/** Builds a pairs file (winner stored as "a"). */
export function encodePairs(pairs: readonly PreferencePair[], width: number, height: number, encoding: 'rgb8' | 'float32-chw' = 'rgb8'): PairsFile {
  return {
    version: 1,
    width,
    height,
    pairs: pairs.map((p) => ({
      prompt: p.prompt, preferred: 'a', a: encodeImage(p.winner, width, height, encoding), b: encodeImage(p.loser, width, height, encoding),
      ...(p.source ? { source: p.source } : {}),
    })),
  };
}

/** A field's value for a message. Not String(): an object from the file may carry a "toString" that is not a function. */
function show(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : Array.isArray(value) ? 'an array' : 'an object';
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

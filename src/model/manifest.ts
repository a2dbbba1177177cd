// The model manifest: what `models/manifest.json` (and any model directory the page or CLIs load) says about its files.
// It is the contract between the Node pipeline that writes a model and the worker that loads it.
import type { UnetConfig } from '../embedded/unet.ts';
import type { TextEncoderConfig } from '../embedded/text-encoder.ts';
import { jsonLimitProblem } from '../util/json-limits.ts';

export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface LoraEntryInfo {
  file: string;
  /** What it is for: the preference offset η (DPO) or the negative offset δ (NPO). */
  role: 'eta' | 'delta';
  rank: number;
  description: string;
}

export interface ModelManifest {
  name: string;
  description: string;
  /** 'standin': seeded random weights (the walking skeleton); 'trained': the embedded model trained end to end. */
  status: 'standin' | 'trained';
  unet: { file: string; config: UnetConfig };
  textEncoder: { file: string; config: TextEncoderConfig };
  /** diffusers scheduler_config.json keys, exactly as diffusers writes them. */
  scheduler: Record<string, unknown>;
  defaults: { prompt: string; negativePrompt: string; steps: number; omega: number; alpha: number; beta: number; seed: number; scheduler: string };
  loras: { eta?: LoraEntryInfo; delta?: LoraEntryInfo };
  files: ManifestFile[];
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** The embedded-model manifest; a prepared (format 2) manifest is refused with a message naming the model kind. */
export function parseManifest(text: string): ModelManifest {
  const m = parseAnyManifest(text);
  if (isPrepared(m)) throw new ManifestError(`this command works on the embedded model only; ${m.name} is a prepared ${m.kind} model`);
  return m;
}

/** manifest.json is a few KB; a prepared model's file list keeps it well under this. */
export const MAX_MANIFEST_CHARS = 4 << 20;

/**
 * Checks a manifest read from a model directory (hostile input: the page loads any `?model=` URL). A wrong file (an
 * HTML page, another JSON) or a hostile one fails here with a message naming the field: sizes and depth bounded
 * before parsing, every file path a plain relative path (no `..`, no scheme, no absolute path) listed once in
 * `files[]` with a byte count and a SHA-256, and, for the embedded format, config numbers in sane ranges (they size
 * the worker's buffers). A prepared manifest (format 2): every field its loaders and pipelines read (checkPrepared).
 */
export function parseAnyManifest(text: string): AnyManifest {
  const tooBig = jsonLimitProblem(text, { maxChars: MAX_MANIFEST_CHARS });
  if (tooBig) throw new ManifestError(`model manifest is refused: ${tooBig}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const start = text.trimStart().slice(0, 40);
    throw new ManifestError(`model manifest is not JSON (it starts with ${JSON.stringify(start)}); is the model directory served correctly?`);
  }
  const m = value as Partial<ModelManifest>;
  if (!isRecord(m) || !isRecord(m.unet) || !m.unet.file || !isRecord(m.textEncoder) || !m.textEncoder.file || !Array.isArray(m.files)) {
    throw new ManifestError('model manifest lacks unet.file, textEncoder.file or files[]');
  }
  checkFiles(m as { files: unknown[] } & Record<string, unknown>);
  if ((m as Partial<PreparedManifest>).format === 2) return checkPrepared(m as unknown as Fields & { files: ManifestFile[] });
  checkEmbedded(m);
  return m as ModelManifest;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : typeof v === 'number' ? String(v) : Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v);

/** A path inside the model directory: relative, `/`-separated, no `.`/`..` segments, no scheme, query or control characters. */
export function isSafeRelativePath(path: unknown): path is string {
  if (typeof path !== 'string' || path.length === 0 || path.length > 512) return false;
  if (/[\\:?#%\u0000-\u001f\u007f]/.test(path) || path.startsWith('/')) return false;
  return path.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

function checkFiles(m: { files: unknown[] } & Record<string, unknown>): void {
  if (m.files.length > 10_000) throw new ManifestError(`model manifest lists ${m.files.length} files; the limit is 10000`);
  const paths = new Set<string>();
  m.files.forEach((f, i) => {
    const where = `model manifest files[${i}]`;
    if (!isRecord(f)) throw new ManifestError(`${where} is ${show(f)}, expected { path, bytes, sha256 }`);
    if (!isSafeRelativePath(f.path)) throw new ManifestError(`${where}.path ${show(f.path)} is not a relative path inside the model directory`);
    if (paths.has(f.path)) throw new ManifestError(`${where}.path ${show(f.path)} is listed twice`);
    paths.add(f.path);
    if (!Number.isSafeInteger(f.bytes) || (f.bytes as number) < 0) throw new ManifestError(`${where}.bytes ${show(f.bytes)} is not a byte count`);
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) throw new ManifestError(`${where}.sha256 ${show(f.sha256)} is not a SHA-256 in hex`);
  });
  const listed = (where: string, path: unknown) => {
    if (!isSafeRelativePath(path)) throw new ManifestError(`model manifest ${where} ${show(path)} is not a relative path inside the model directory`);
    if (!paths.has(path)) throw new ManifestError(`model manifest ${where} ${show(path)} is not listed in files[]`);
  };
  listed('unet.file', (m.unet as Record<string, unknown>).file);
  listed('textEncoder.file', (m.textEncoder as Record<string, unknown>).file);
  const loras = m.loras;
  if (loras !== undefined && !isRecord(loras)) throw new ManifestError(`model manifest loras is ${show(loras)}, expected an object`);
  for (const role of ['eta', 'delta'] as const) {
    const entry = loras?.[role];
    if (entry === undefined) continue;
    if (!isRecord(entry)) throw new ManifestError(`model manifest loras.${role} is ${show(entry)}, expected { file, role, rank, description }`);
    listed(`loras.${role}.file`, entry.file);
  }
}

/** Positive integers up to `max` (config numbers that size tensors and buffers). */
function checkInt(where: string, v: unknown, max: number, min = 1): void {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) throw new ManifestError(`model manifest ${where} is ${show(v)}, expected an integer in [${min}, ${max}]`);
}

function checkEmbedded(m: Partial<ModelManifest>): void {
  const unet = (m.unet as { config?: unknown }).config;
  const text = (m.textEncoder as { config?: unknown }).config;
  if (!isRecord(unet)) throw new ManifestError(`model manifest unet.config is ${show(unet)}, expected the UNet's configuration`);
  if (!isRecord(text)) throw new ManifestError(`model manifest textEncoder.config is ${show(text)}, expected the text encoder's configuration`);
  checkInt('unet.config.sampleSize', unet.sampleSize, 4096);
  for (const k of ['inChannels', 'outChannels', 'layersPerBlock', 'normGroups']) checkInt(`unet.config.${k}`, unet[k], 64);
  for (const k of ['attentionHeadDim', 'crossAttentionDim']) checkInt(`unet.config.${k}`, unet[k], 8192);
  checkInt('unet.config.contextLength', unet.contextLength, 1024);
  const levels = unet.blockOutChannels;
  if (!Array.isArray(levels) || levels.length === 0 || levels.length > 8) throw new ManifestError(`model manifest unet.config.blockOutChannels is ${show(levels)}, expected 1 to 8 channel counts`);
  levels.forEach((c, i) => checkInt(`unet.config.blockOutChannels[${i}]`, c, 8192));
  const attention = unet.crossAttention;
  if (!Array.isArray(attention) || attention.length !== levels.length || !attention.every((a) => typeof a === 'boolean')) {
    throw new ManifestError(`model manifest unet.config.crossAttention must be ${levels.length} booleans, one per level`);
  }
  checkInt('textEncoder.config.contextLength', text.contextLength, 1024, 3);
  for (const k of ['vocabSize', 'hiddenSize']) checkInt(`textEncoder.config.${k}`, text[k], 1 << 20);
  for (const k of ['layers', 'heads']) checkInt(`textEncoder.config.${k}`, text[k], 256);
  if (!isRecord(m.loras)) throw new ManifestError(`model manifest loras is ${show(m.loras)}, expected { eta?, delta? }`);
  if (!isRecord(m.scheduler)) throw new ManifestError(`model manifest scheduler is ${show(m.scheduler)}, expected diffusers' scheduler_config.json keys`);
  const d = m.defaults as unknown;
  if (!isRecord(d)) throw new ManifestError(`model manifest defaults is ${show(d)}, expected the page's default settings`);
  for (const k of ['prompt', 'negativePrompt', 'scheduler']) {
    if (typeof d[k] !== 'string' || (d[k] as string).length > 10_000) throw new ManifestError(`model manifest defaults.${k} is ${show(d[k])}, expected a string`);
  }
  checkInt('defaults.steps', d.steps, 1000);
  checkInt('defaults.seed', d.seed, 0xffffffff, 0);
  for (const k of ['omega', 'alpha', 'beta']) {
    if (typeof d[k] !== 'number' || !Number.isFinite(d[k]) || Math.abs(d[k] as number) > 1000) throw new ManifestError(`model manifest defaults.${k} is ${show(d[k])}, expected a number`);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Prepared real models (SD1.5 now, SDXL next): what `npm run prepare-model` writes and the latent pipeline reads.
// A prepared directory is the one format the page and every CLI load; only prepare-model reads raw exports.
// ---------------------------------------------------------------------------------------------------------------------

export type ModelKind = 'embedded' | 'sd15' | 'sdxl';
export type WeightDtype = 'float32' | 'float16';

/** One ONNX graph of a prepared model and the weight shards its initializers point to (external data locations). */
export interface OnnxComponent {
  /** The graph, relative to the model directory (e.g. `unet/model.onnx`). */
  file: string;
  /**
   * External-data shards, relative to the model directory, each well under 2 GB. The graph's tensors name them by
   * their path relative to the graph's own folder (ORT's rule), e.g. `weights-00.bin` for `unet/weights-00.bin`.
   */
  externalData: string[];
  /** Element types of the graph's inputs as exported (timestep may be float32, float16 or int64; input_ids int32/int64). */
  inputs: Record<string, 'float32' | 'float16' | 'int32' | 'int64'>;
  outputs: string[];
  dtype: WeightDtype;
  /** Bytes of its largest initializer: the page checks it against the GPU's buffer limits before downloading. */
  largestTensorBytes?: number;
}

/**
 * A LoRA file as its author wrote it (diffusers, PEFT or kohya keys); parsed against the UNet's Linear/1×1 Conv sites.
 * Its ΔW is multiplied by `scale` (default 1), as diffusers' `set_adapters(names, adapter_weights)` weighs an adapter.
 */
export interface LoraOffset { kind: 'lora'; file: string; rank: number; description: string; scale?: number }

/** η or δ of a prepared model. */
export type PreparedOffset =
  | LoraOffset
  /**
   * Several LoRAs on one branch, each with its own scale: the offset is Σ scaleᵢ·ΔWᵢ (the paper's SPO+NPO recipe puts
   * the SPO LoRA and the NPO LoRA together on the negative branch; diffusers: several adapters with set_adapters).
   */
  | { kind: 'stack'; parts: LoraOffset[]; description: string }
  /**
   * A dense offset (e.g. DPO-SD1.5: η = θ_dpo − θ): safetensors shards whose tensor names are the UNet graph's own
   * initializer names (`onnx::MatMul_1234`, `conv_in.weight`, …) in the initializer's layout, dims and dtype.
   */
  | { kind: 'dense'; files: string[]; tensors: number; description: string };

/** The files an offset reads (a dense one's shards, a stack's LoRAs, a LoRA's file). */
export function offsetFiles(offset: PreparedOffset): string[] {
  if (offset.kind === 'dense') return offset.files;
  if (offset.kind === 'stack') return offset.parts.map((p) => p.file);
  return [offset.file];
}

/**
 * The UNet weights η and δ touch (src/engine/unet-graph.ts): they become graph inputs fed from the weight sets (src/engine/weights-*.ts).
 * Stacked (LoRA offsets only): one [θ_pos; θ_neg] input per touched weight, twice its size. Grouped (a dense η): θ_pos
 * and θ_neg are separate inputs. The worker merges in float32 on the CPU: θ_pos and θ_neg plus each offset's ΔW.
 */
export interface NpoFootprint {
  /** Elements of all touched weights, and of the largest one. */
  touchedElements: number;
  largestTouchedElements: number;
  stacked: boolean;
  /** Offsets present (η and/or δ: 0 to 2); a LoRA's ΔW exists only while one weight is merged (fit.ts npoWorkerArrays). */
  offsetArrays: number;
  /** Bytes per element as the graph takes the weights (2 for float16, 4 for float32). */
  elementBytes: number;
}

export interface PreparedManifest {
  format: 2;
  kind: 'sd15' | 'sdxl';
  name: string;
  description: string;
  status: 'prepared';
  unet: OnnxComponent;
  textEncoder: OnnxComponent;
  vaeDecoder: OnnxComponent;
  vaeEncoder?: OnnxComponent;
  /** Files `@huggingface/tokenizers` loads offline: `<dir>/tokenizer.json` and `<dir>/tokenizer_config.json`. */
  tokenizer: { dir: string; modelMaxLength: number };
  /** Latents are [channels, height/factor, width/factor]; the VAE decodes latents / scalingFactor. */
  latent: { channels: number; vaeScaleFactor: number; scalingFactor: number };
  /** The UNet's text context: [contextLength, crossAttentionDim]. */
  context: { length: number; dim: number };
  /** diffusers scheduler_config.json keys, exactly as the export ships them. */
  scheduler: Record<string, unknown>;
  defaults: { prompt: string; negativePrompt: string; steps: number; omega: number; alpha: number; beta: number; seed: number; scheduler: string; width: number; height: number };
  offsets: { eta?: PreparedOffset; delta?: PreparedOffset };
  /** What the offsets cost when running, counted by prepare-model (src/prepare/npo-footprint.ts; fit.ts reads it). */
  npoFootprint?: NpoFootprint;
  /** What prepare-model was given, for provenance (paths as the user typed them, tool version, date). */
  source: Record<string, unknown>;
  files: ManifestFile[];
  /** kind 'sdxl': the second text encoder and the UNet's added conditions (diffusers' StableDiffusionXLPipeline). */
  sdxl?: SdxlConditioning;
}

/**
 * SDXL's conditioning, as diffusers' StableDiffusionXLPipeline.encode_prompt computes it: the context is the two
 * encoders' penultimate hidden states concatenated ([77, dim1 + dim2] = context.dim); the UNet's `text_embeds` is the
 * second encoder's pooled projection and `time_ids` = [original h, w, crop top, left, target h, w].
 */
export interface SdxlConditioning {
  textEncoder2: OnnxComponent;
  /** The second tokenizer (SDXL's pads with "!"), files as in `tokenizer`. */
  tokenizer2: { dir: string; modelMaxLength: number };
  /** Output names: each encoder's penultimate hidden states (`hidden_states.N`), and encoder 2's pooled projection. */
  hiddenStates: [string, string];
  pooled: string;
  /** Widths: the two hidden states (they sum to context.dim), the pooled `text_embeds`, and `time_ids` (6). */
  hiddenDims: [number, number];
  textEmbedsDim: number;
  timeIdsDim: number;
  /** model_index.json: no negative prompt gives zero embeddings (an explicit "" is still encoded). */
  forceZerosForEmptyPrompt: boolean;
}

/** Any manifest the loaders accept. */
export type AnyManifest = ModelManifest | PreparedManifest;
export const isPrepared = (m: AnyManifest): m is PreparedManifest => (m as PreparedManifest).format === 2;

// ---------------------------------------------------------------------------------------------------------------------
// Checks of a prepared manifest: every field the loaders and pipelines read, typed and bounded, every path they fetch
// listed in files[] (a hand-edited, older or hostile manifest fails here, not as a TypeError deep in a pipeline).
// ---------------------------------------------------------------------------------------------------------------------

const INPUT_TYPES = new Set(['float32', 'float16', 'int32', 'int64']);
/** Bounds well above SD1.5/SDXL's (4 latent channels, factor 8, 77 × 2048 context, 1024² images). */
const MAX_SIDE = 8192;
const MAX_DIM = 1 << 16;

type Fields = Record<string, unknown>;

function record(where: string, v: unknown, expected: string): Fields {
  if (!isRecord(v)) throw new ManifestError(`prepared model manifest ${where} is ${show(v)}, expected ${expected}`);
  return v;
}

function checkText(where: string, v: unknown, max = 10_000): string {
  if (typeof v !== 'string' || v.length > max) throw new ManifestError(`prepared model manifest ${where} is ${show(v)}, expected a string`);
  return v;
}

function checkNumber(where: string, v: unknown, max: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > max) throw new ManifestError(`model manifest ${where} is ${show(v)}, expected a number of magnitude at most ${max}`);
}

/** One ONNX graph: its file and external data listed in files[], its input types and output names. */
function checkComponent(where: string, v: unknown, listed: (where: string, path: unknown) => void): void {
  const c = record(where, v, '{ file, externalData, inputs, outputs, dtype }');
  listed(`${where}.file`, c.file);
  if (!Array.isArray(c.externalData) || c.externalData.length > 1000) throw new ManifestError(`prepared model manifest ${where}.externalData is ${show(c.externalData)}, expected at most 1000 file paths`);
  c.externalData.forEach((path, i) => listed(`${where}.externalData[${i}]`, path));
  const inputs = record(`${where}.inputs`, c.inputs, 'input names and their element types');
  for (const [name, type] of Object.entries(inputs)) {
    if (typeof type !== 'string' || !INPUT_TYPES.has(type)) throw new ManifestError(`prepared model manifest ${where}.inputs.${name.slice(0, 80)} is ${show(type)}, expected one of ${[...INPUT_TYPES].join(', ')}`);
  }
  if (!Array.isArray(c.outputs) || c.outputs.length > 1000 || !c.outputs.every((o) => typeof o === 'string' && o.length <= 1000)) {
    throw new ManifestError(`prepared model manifest ${where}.outputs is ${show(c.outputs)}, expected output names`);
  }
  if (c.dtype !== 'float32' && c.dtype !== 'float16') throw new ManifestError(`prepared model manifest ${where}.dtype is ${show(c.dtype)}, expected float32 or float16`);
  if (c.largestTensorBytes !== undefined) checkInt(`${where}.largestTensorBytes`, c.largestTensorBytes, Number.MAX_SAFE_INTEGER, 0);
}

/** A tokenizer folder: promptTokenizer reads its tokenizer.json and tokenizer_config.json. */
function checkTokenizer(where: string, v: unknown, listed: (where: string, path: unknown) => void): void {
  const t = record(where, v, '{ dir, modelMaxLength }');
  if (!isSafeRelativePath(t.dir)) throw new ManifestError(`model manifest ${where}.dir ${show(t.dir)} is not a relative path inside the model directory`);
  for (const name of ['tokenizer.json', 'tokenizer_config.json']) listed(`${where}.dir`, `${t.dir}/${name}`);
  checkInt(`${where}.modelMaxLength`, t.modelMaxLength, 4096, 2);
}

function checkOffset(where: string, v: unknown, listed: (where: string, path: unknown) => void): void {
  if (v === undefined) return;
  const o = record(where, v, "{ kind: 'lora' | 'dense', … }");
  checkText(`${where}.description`, o.description);
  if (o.kind === 'lora') {
    checkLoraOffset(where, o, listed);
  } else if (o.kind === 'stack') {
    // Several LoRAs on one branch (the SPO+NPO recipe), each with its own scale.
    if (!Array.isArray(o.parts) || o.parts.length === 0 || o.parts.length > 64) throw new ManifestError(`prepared model manifest ${where}.parts is ${show(o.parts)}, expected 1 to 64 LoRAs`);
    o.parts.forEach((part, i) => {
      const p = record(`${where}.parts[${i}]`, part, "{ kind: 'lora', file, rank, scale? }");
      if (p.kind !== 'lora') throw new ManifestError(`prepared model manifest ${where}.parts[${i}].kind is ${show(p.kind)}, expected "lora"`);
      checkLoraOffset(`${where}.parts[${i}]`, p, listed);
    });
  } else if (o.kind === 'dense') {
    if (!Array.isArray(o.files) || o.files.length === 0 || o.files.length > 1000) throw new ManifestError(`prepared model manifest ${where}.files is ${show(o.files)}, expected 1 to 1000 safetensors files`);
    o.files.forEach((path, i) => listed(`${where}.files[${i}]`, path));
    checkInt(`${where}.tensors`, o.tensors, 1 << 20, 0);
  } else throw new ManifestError(`prepared model manifest ${where}.kind is ${show(o.kind)}, expected "lora", "stack" or "dense"`);
}

function checkLoraOffset(where: string, o: Fields, listed: (where: string, path: unknown) => void): void {
  listed(`${where}.file`, o.file);
  checkInt(`${where}.rank`, o.rank, 4096);
  if (o.scale !== undefined) checkNumber(`${where}.scale`, o.scale, 1e6);
}

/** What the offsets cost when running (fit.ts npoWorkerArrays multiplies these). */
function checkFootprint(v: unknown): void {
  const f = record('npoFootprint', v, '{ touchedElements, largestTouchedElements, stacked, offsetArrays, elementBytes }');
  checkInt('npoFootprint.touchedElements', f.touchedElements, 2 ** 40, 0);
  checkInt('npoFootprint.largestTouchedElements', f.largestTouchedElements, f.touchedElements as number, 0);
  if (typeof f.stacked !== 'boolean') throw new ManifestError(`prepared model manifest npoFootprint.stacked is ${show(f.stacked)}, expected true or false`);
  checkInt('npoFootprint.offsetArrays', f.offsetArrays, 2, 0);
  if (f.elementBytes !== 2 && f.elementBytes !== 4) throw new ManifestError(`prepared model manifest npoFootprint.elementBytes is ${show(f.elementBytes)}, expected 2 or 4`);
}

/** SDXL's second encoder and added conditions: the two hidden widths make up the context width. */
function checkSdxl(v: unknown, contextDim: number, listed: (where: string, path: unknown) => void): void {
  const x = record('sdxl', v, "SDXL's conditioning (a kind 'sdxl' model needs it)");
  checkComponent('sdxl.textEncoder2', x.textEncoder2, listed);
  checkTokenizer('sdxl.tokenizer2', x.tokenizer2, listed);
  const names = x.hiddenStates;
  if (!Array.isArray(names) || names.length !== 2 || !names.every((n) => typeof n === 'string' && n.length <= 1000)) throw new ManifestError(`prepared model manifest sdxl.hiddenStates is ${show(names)}, expected two output names`);
  checkText('sdxl.pooled', x.pooled, 1000);
  const dims = x.hiddenDims;
  if (!Array.isArray(dims) || dims.length !== 2) throw new ManifestError(`prepared model manifest sdxl.hiddenDims is ${show(dims)}, expected two widths`);
  dims.forEach((d, i) => checkInt(`sdxl.hiddenDims[${i}]`, d, MAX_DIM));
  if (dims[0] + dims[1] !== contextDim) throw new ManifestError(`prepared model manifest sdxl.hiddenDims ${dims[0]} + ${dims[1]} is not context.dim ${contextDim}`);
  checkInt('sdxl.textEmbedsDim', x.textEmbedsDim, MAX_DIM);
  checkInt('sdxl.timeIdsDim', x.timeIdsDim, 64);
  if (typeof x.forceZerosForEmptyPrompt !== 'boolean') throw new ManifestError(`prepared model manifest sdxl.forceZerosForEmptyPrompt is ${show(x.forceZerosForEmptyPrompt)}, expected true or false`);
}

function checkPreparedDefaults(v: unknown, vaeScaleFactor: number): void {
  const d = record('defaults', v, "the page's default settings");
  for (const k of ['prompt', 'negativePrompt', 'scheduler']) checkText(`defaults.${k}`, d[k]);
  checkInt('defaults.steps', d.steps, 1000);
  checkInt('defaults.seed', d.seed, 0xffffffff, 0);
  for (const k of ['omega', 'alpha', 'beta']) checkNumber(`defaults.${k}`, d[k], 1000);
  for (const k of ['width', 'height']) {
    checkInt(`defaults.${k}`, d[k], MAX_SIDE, vaeScaleFactor);
    if ((d[k] as number) % vaeScaleFactor !== 0) throw new ManifestError(`prepared model manifest defaults.${k} ${d[k]} is not a multiple of the VAE's factor ${vaeScaleFactor}`);
  }
}

/** Every field of a prepared manifest the loaders and pipelines read (files[] was checked by checkFiles). */
function checkPrepared(m: Fields & { files: ManifestFile[] }): PreparedManifest {
  const paths = new Set(m.files.map((f) => f.path));
  const listed = (where: string, path: unknown) => {
    if (!isSafeRelativePath(path)) throw new ManifestError(`model manifest ${where} ${show(path)} is not a relative path inside the model directory`);
    if (!paths.has(path)) throw new ManifestError(`model manifest ${where} ${show(path)} is not listed in files[]`);
  };
  if (m.kind !== 'sd15' && m.kind !== 'sdxl') throw new ManifestError(`prepared model manifest kind is ${show(m.kind)}; this version reads sd15 and sdxl models`);
  checkText('name', m.name, 1000);
  checkText('description', m.description);
  for (const c of ['unet', 'textEncoder', 'vaeDecoder'] as const) checkComponent(c, m[c], listed);
  if (m.vaeEncoder !== undefined) checkComponent('vaeEncoder', m.vaeEncoder, listed);
  checkTokenizer('tokenizer', m.tokenizer, listed);
  const latent = record('latent', m.latent, '{ channels, vaeScaleFactor, scalingFactor }');
  checkInt('latent.channels', latent.channels, 64);
  checkInt('latent.vaeScaleFactor', latent.vaeScaleFactor, 64);
  if (!(typeof latent.scalingFactor === 'number' && latent.scalingFactor > 0 && latent.scalingFactor <= 1000)) throw new ManifestError(`prepared model manifest latent.scalingFactor is ${show(latent.scalingFactor)}, expected a positive number`);
  const context = record('context', m.context, '{ length, dim }');
  checkInt('context.length', context.length, 4096);
  checkInt('context.dim', context.dim, MAX_DIM);
  record('scheduler', m.scheduler, "diffusers' scheduler_config.json keys");
  checkPreparedDefaults(m.defaults, latent.vaeScaleFactor as number);
  const offsets = record('offsets', m.offsets, '{ eta?, delta? }');
  for (const role of ['eta', 'delta'] as const) checkOffset(`offsets.${role}`, offsets[role], listed);
  if (m.npoFootprint !== undefined) checkFootprint(m.npoFootprint);
  if (m.source !== undefined) record('source', m.source, 'what prepare-model was given');
  // Checked wherever present: the fit check reads sdxl.textEncoder2 of any kind.
  if (m.kind === 'sdxl' || m.sdxl !== undefined) checkSdxl(m.sdxl, context.dim as number, listed);
  return m as unknown as PreparedManifest;
}


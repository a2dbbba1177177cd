// The model manifest: what `models/manifest.json` (and any model directory the page or CLIs load) says about its files.
// It is the contract between the Node pipeline that writes a model and the worker that loads it.
import type { UnetConfig } from '../embedded/unet.ts';
import type { TextEncoderConfig } from '../embedded/text-encoder.ts';

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

/** Checks the manifest's shape enough that a wrong file (an HTML page, another JSON) fails here with a clear message. */
export function parseAnyManifest(text: string): AnyManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const start = text.trimStart().slice(0, 40);
    throw new ManifestError(`model manifest is not JSON (it starts with ${JSON.stringify(start)}); is the model directory served correctly?`);
  }
  const m = value as Partial<ModelManifest>;
  if (!m || typeof m !== 'object' || !m.unet?.file || !m.textEncoder?.file || !Array.isArray(m.files)) {
    throw new ManifestError('model manifest lacks unet.file, textEncoder.file or files[]');
  }
  if ((m as Partial<PreparedManifest>).format === 2) return checkPrepared(m as Partial<PreparedManifest>);
  return m as ModelManifest;
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

/** η or δ of a prepared model. */
export type PreparedOffset =
  /** A LoRA file as its author wrote it (diffusers, PEFT or kohya keys); parsed against the UNet's Linear/1×1 Conv sites. */
  | { kind: 'lora'; file: string; rank: number; description: string }
  /**
   * A dense offset (e.g. DPO-SD1.5: η = θ_dpo − θ): safetensors shards whose tensor names are the UNet graph's own
   * initializer names (`onnx::MatMul_1234`, `conv_in.weight`, …) in the initializer's layout, dims and dtype.
   */
  | { kind: 'dense'; files: string[]; tensors: number; description: string };

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
  /** What prepare-model was given, for provenance (paths as the user typed them, tool version, date). */
  source: Record<string, unknown>;
  files: ManifestFile[];
}

/** Any manifest the loaders accept. */
export type AnyManifest = ModelManifest | PreparedManifest;
export const isPrepared = (m: AnyManifest): m is PreparedManifest => (m as PreparedManifest).format === 2;

/** The fields the latent pipeline reads, present and of the right type (a hand-edited or older manifest fails here). */
function checkPrepared(m: Partial<PreparedManifest>): PreparedManifest {
  const missing = (
    [
      ['kind', m.kind === 'sd15' || m.kind === 'sdxl'],
      ['vaeDecoder.file', typeof m.vaeDecoder?.file === 'string'],
      ['tokenizer.dir', typeof m.tokenizer?.dir === 'string' && Number.isInteger(m.tokenizer?.modelMaxLength)],
      ['latent', [m.latent?.channels, m.latent?.vaeScaleFactor, m.latent?.scalingFactor].every((v) => typeof v === 'number' && v > 0)],
      ['context', Number.isInteger(m.context?.length) && Number.isInteger(m.context?.dim)],
      ['defaults.width/height', Number.isInteger(m.defaults?.width) && Number.isInteger(m.defaults?.height)],
      ['offsets', !!m.offsets && typeof m.offsets === 'object'],
      ['scheduler', !!m.scheduler && typeof m.scheduler === 'object'],
      ...(['unet', 'textEncoder', 'vaeDecoder'] as const).map((c) => [`${c}.externalData/inputs/outputs`, Array.isArray(m[c]?.externalData) && !!m[c]?.inputs && Array.isArray(m[c]?.outputs)] as const),
    ] as const
  ).filter(([, ok]) => !ok).map(([name]) => name);
  if (missing.length) throw new ManifestError(`prepared model manifest: missing or invalid ${missing.join(', ')}`);
  return m as PreparedManifest;
}

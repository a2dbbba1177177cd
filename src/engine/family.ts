// What a model family tells the one engine (DESIGN §5: one engine, family pipelines, as diffusers' pipelines over
// shared schedulers): how a prompt becomes the UNet's conditioning, how a sample becomes an image, and the UNet
// export with its LoRA sites and the model's own η and δ. The families: src/pipelines/embedded.ts (pixel space, own
// tokenizer), sd15.ts (CLIP, latents, VAE decoder), sdxl.ts (two encoders, pooled embeds and time ids).
import type * as OrtCommon from 'onnxruntime-common';
import type { LoraSite } from '../onnx/lora-sites.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { GenerateParams, ModelInfo } from '../worker/protocol.ts';
import type { FloatType, Offset } from './offsets.ts';

export type Feeds = Record<string, OrtCommon.Tensor>;

/** The prompt's token ids as the text encoder receives them, and its count without BOS/EOS (the page's "12/75"). */
export interface TokenReport {
  ids: number[];
  count: number;
  limit: number;
  truncated: boolean;
  /** SDXL: the second tokenizer's ids (it pads with its own pad token). */
  ids2?: number[];
}

/**
 * A family's text conditioning. Each branch's conditioning is packed into one Float32Array per sample (the sampler
 * copies it into the batch as it is), and unpacked into the UNet's inputs for a call of n samples.
 */
export interface Conditioner {
  /** Values per sample in the packed conditioning. */
  size: number;
  encode(params: GenerateParams): Promise<{ positive: Float32Array; negative: Float32Array }>;
  unetFeeds(packed: Float32Array, n: number): Feeds;
  tokens(prompt: string): TokenReport;
  release(): Promise<void>;
}

/** A latent family's VAE decoder: image = decoder(latents / scalingFactor). */
export interface LatentDecoder {
  session: OrtCommon.InferenceSession;
  input: string;
  inputType: FloatType;
  output: string;
  scalingFactor: number;
}

/** The UNet export as a family hands it over: the graph (its weights the engine reads), its LoRA sites and its I/O. */
export interface UnetExport {
  model: ModelProto;
  /** The graph's path in the model directory: its external data locations are relative to its folder. */
  graphPath: string;
  sites: LoraSite[];
  /** What a LoRA that matches no site is told it should target, e.g. "attention projections". */
  sitesDescription: string;
  sampleType: FloatType;
  /** int64 exports truncate a fractional timestep toward zero, as diffusers' ONNX pipeline's numpy cast does. */
  timestepType: 'float32' | 'float16' | 'int64';
  output: string;
}

export interface ModelFamily {
  info: Omit<ModelInfo, 'loraSites' | 'hasEta' | 'hasDelta' | 'offsets'>;
  unet: UnetExport;
  /** The model's own η and δ (undefined: none). */
  offsets: { eta: Offset; delta: Offset };
  /** diffusers scheduler_config.json keys. */
  scheduler: Record<string, unknown>;
  /** [C, H, W] the sampler works on for these params: latents, or the embedded model's pixels. */
  sampleShape(params: Pick<GenerateParams, 'width' | 'height'>): [number, number, number];
  conditioner: Conditioner;
  /** Latent families: the VAE decoder. Absent: the sample is the image, and step previews show it. */
  decoder?: LatentDecoder;
  /** Sessions the family owns besides the UNet (text encoders, VAE). */
  release(): Promise<void>;
}

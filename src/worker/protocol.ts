// The one message protocol between the page and the worker that owns ORT, the GPU and the weights.
// Page → worker: WorkerRequest. Worker → page: WorkerEvent. Every generation carries the page's `id`, so late events
// of a cancelled or superseded generation can be recognised and dropped.
import type { DiffusersModel } from '../share/diffusers-script.ts';
import type { LrSchedule } from '../train/lr-schedule.ts';
import type { CheckpointChoice, CheckpointMode } from '../train/unet-segments.ts';

export type BackendPreference = 'auto' | 'webgpu' | 'wasm';
export type Backend = 'webgpu' | 'wasm';
export type ImageKind = 'baseline' | 'npo';

export interface GenerateParams {
  prompt: string;
  negativePrompt: string;
  /**
   * The negative prompt was given even if empty (`npm run generate --negative-prompt ""`). SDXL tells the two apart as
   * diffusers does: no negative prompt gives zero embeddings when the model says force_zeros_for_empty_prompt, an
   * explicit "" is encoded. Absent: an empty negativePrompt means none (the page's empty box). SD1.5 always encodes.
   */
  negativePromptGiven?: boolean;
  seed: number;
  steps: number;
  omega: number;
  alpha: number;
  beta: number;
  scheduler: string;
  /** Image size in pixels (prepared models; the model's default when absent). The embedded model has one size. */
  width?: number;
  height?: number;
}

/** Settings of an in-browser LoRA training run (src/train's trainLora). */
export interface TrainOptions {
  /** NPO: train on reversed pairs, giving a δ for the negative branch; false gives a DPO LoRA (an η). */
  reverse: boolean;
  rank: number;
  steps: number;
  beta: number;
  lr: number;
  batch: number;
  seed: number;
  /** Prepared SD models: the training images' side in pixels (square); default the model's own size. */
  resolution?: number;
  /** Activation checkpointing (src/train/memory-plan.ts): 'auto' (default) recomputes only when the plan needs it. */
  checkpoint?: CheckpointChoice;
  /** Mirror each drawn pair with probability ½ (trainLora's hflip); default off. */
  hflip?: boolean;
  /** Micro-batches per update (gradient accumulation); default 1. */
  gradAccum?: number;
  /** diffusers' lr schedules (src/train/lr-schedule.ts) and warm-up steps; default constant, 0. */
  lrSchedule?: LrSchedule;
  lrWarmup?: number;
}

export type LoraRole = 'eta' | 'delta';

export type WorkerRequest =
  | { type: 'init'; modelUrl: string; backend: BackendPreference }
  /** Replaces the loaded model by a prepared directory chosen from disk (read in the worker, never uploaded). */
  | { type: 'load-files'; files: File[]; backend: BackendPreference }
  /** A model prepared in this browser (origin-private file system, src/model/source/opfs.ts), by its folder id. */
  | { type: 'load-prepared'; modelId: string; backend: BackendPreference }
  /** Removes every cached model file (the Cache API store); answered with a 'cache-cleared' event. */
  | { type: 'clear-cache' }
  /**
   * `previews: false` turns step previews off (the page's "Step previews" box, ?previews=off): then a generation's
   * read-backs from the GPU do not grow with its steps.
   */
  | { type: 'generate'; id: number; params: GenerateParams; images: ImageKind[]; previews?: boolean }
  | { type: 'train'; id: number; pairsJson: string; options: TrainOptions }
  /** Replaces the model's η or δ by a LoRA file (safetensors bytes); null restores the model's own; 'none' runs without one (θ + 0: η off shows the base model). */
  | { type: 'use-lora'; id: number; role: LoraRole; lora: Uint8Array | null | 'none'; name: string }
  /**
   * The image a LoRA changes (δ: the NPO image, η: the baseline), made with the current η/δ and again with `lora`
   * in its role, at `params`; the worker's own η/δ are back in place afterwards. Answered with 'lora-preview'.
   */
  | { type: 'preview-lora'; id: number; role: LoraRole; lora: Uint8Array; params: GenerateParams }
  | { type: 'cancel'; id: number }
  /** The prompt's token count for the page's counter (CLIP: "12/75"); answered with a 'tokens' event. */
  | { type: 'count-tokens'; id: number; prompt: string }
  /** Tests only: destroys the worker's GPU device, as a driver reset would lose it (the next job recovers). */
  | { type: 'debug-lose-device' }
  /** Test hook: the worker's next task fails to allocate, outside any job, so the error is uncaught (a crash). */
  | { type: 'debug-crash' };

export interface TrainStep { step: number; steps: number; loss: number; accuracy: number; stepsPerSecond: number }

export interface ModelInfo {
  name: string;
  status: 'standin' | 'trained' | 'prepared';
  /** The model family (DESIGN §5): the embedded pixel model, or a prepared SD1.5/SDXL directory. */
  kind?: 'embedded' | 'sd15' | 'sdxl';
  /** Tokens a prompt may have before truncation (75 for CLIP's 77 with BOS/EOS); absent for the embedded model. */
  tokenLimit?: number;
  /** The embedded model: its text encoder's context length (prompts longer than it minus BOS/EOS are refused). */
  contextLength?: number;
  width: number;
  height: number;
  loraSites: number;
  hasEta: boolean;
  hasDelta: boolean;
  /** Prepared models: what η and δ are, e.g. "1× diffusers LoRA (136 layers) + 0.8× diffusers LoRA (40 layers)". */
  offsets?: { eta?: string; delta?: string };
  schedulers: string[];
  defaults: GenerateParams;
  /** Prepared models: what diffusers needs to remake their images (the page's "Copy as diffusers script"). */
  diffusers?: DiffusersModel;
}

/** What a generation cost: which loop ran, GPU→CPU read-backs, and the worker's live GPU buffers after it. */
export interface GenerationStats {
  loop: 'gpu' | 'cpu';
  readBacks: number;
  /** UNet runs of the generation: one per step, whatever mix of θ_pos and θ_neg the images need. */
  unetCalls: number;
  /** Previews sent during the generation (sets of one per image); each costs the GPU loop a small read-back per image. */
  previews: number;
  liveBuffers?: number;
  liveBufferBytes?: number;
  merge?: { merges: number; bytes: number; milliseconds: number; tensors?: number };
}

export type WorkerEvent =
  | { type: 'loading'; message: string; loaded: number; total: number }
  /** `reason`: why this backend (asked for, or what 'auto' found: "WebGPU adapter is software (SwiftShader)"). */
  | { type: 'ready'; backend: Backend; adapter: string; reason: string; model: ModelInfo; notice?: string }
  | { type: 'progress'; id: number; step: number; total: number }
  /** A low-resolution look at an image mid-sampling (its x̂₀ estimate), drawn until the finished image arrives. */
  | { type: 'preview'; id: number; kind: ImageKind; step: number; width: number; height: number; rgba: Uint8ClampedArray }
  | { type: 'image'; id: number; kind: ImageKind; width: number; height: number; rgba: Uint8ClampedArray; seed: number }
  | { type: 'done'; id: number; seed: number; milliseconds: number; stats?: GenerationStats }
  | { type: 'cancelled'; id: number }
  /** The memory plan of a training run, before its first step: the checkpointing chosen and the planned totals. */
  | { type: 'train-plan'; id: number; checkpoint: CheckpointMode; summary: string }
  | { type: 'train-progress'; id: number; report: TrainStep }
  | { type: 'train-done'; id: number; lora: Uint8Array; steps: number; warning?: string }
  /** `skipped`: keys of the file that target layers the playground does not patch (they are ignored). */
  | { type: 'lora-used'; id: number; role: LoraRole; name: string; skipped: number }
  | { type: 'cache-cleared'; files: number; bytes: number }
  /** A 'preview-lora' answer: the same image without (before) and with (after) the LoRA; seed is the one both used. */
  | { type: 'lora-preview'; id: number; role: LoraRole; kind: ImageKind; width: number; height: number; seed: number; before: Uint8ClampedArray; after: Uint8ClampedArray }
  | { type: 'tokens'; id: number; prompt: string; count: number; limit: number; error?: string }
  | { type: 'error'; id?: number; message: string; fatal: boolean };

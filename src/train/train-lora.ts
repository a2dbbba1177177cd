// Trains a LoRA with Diffusion-DPO, or with NPO (`reverse`: the same loss on pairs with winner and loser swapped,
// DESIGN §2), on any UNet the model loader reads. Written against ORT's common API like src/worker/engine.ts, so the
// same loop runs on onnxruntime-node (CLI, tests) and onnxruntime-web (the browser worker).
// Per step (diffusers' train_diffusion_dpo.py): B pairs, one ε and one t ~ U{0, …, T−1} per pair shared by its two
// images, ᾱ_t from the model's scheduler; one run of the DPO graph (dpo-graph.ts) gives loss, implicit accuracy and
// the LoRA gradients; AdamW (optimizer.ts) with grad-norm clipping updates A and B.
// SDXL (a prepared model of kind sdxl): the prompt through both text encoders as the SDXL pipeline encodes it
// (src/pipelines/sdxl-conditioning.ts: penultimate hidden states concatenated, pooled text_embeds), time_ids per pair
// from its source image (train_diffusion_dpo_sdxl.py's compute_time_ids: original size, crop top-left, training size;
// [H, W, 0, 0, H, W] for a pair that records no source), and β_dpo as the SDXL scripts scale it: inside = −0.5·β_dpo·(model_diff − ref_diff) (diffusers'
// train_diffusion_dpo_sdxl.py, Diffusion-NPO's train_sdxl.py, whose released δ used β_dpo 2000); the SD1.5 scripts
// have no 0.5.
// LoRA init as the official NPO / diffusers DPO scripts (PEFT LoraConfig(r, lora_alpha = r, init_lora_weights =
// "gaussian")): A ~ N(0, (1/r)²), B = 0, so training starts exactly at the reference.
import type * as OrtCommon from 'onnxruntime-common';
import { createGenerator, type NoiseGenerator } from '../diffusion/noise/index.ts';
import { createScheduler } from '../diffusion/schedulers/index.ts';
import { alphasCumprod, makeBetas } from '../diffusion/schedulers/schedule.ts';
import { tokenize } from '../embedded/tokenizer.ts';
import type { LoraSet } from '../lora/types.ts';
import { isPrepared, type AnyManifest, type ModelManifest, type PreparedManifest } from '../model/manifest.ts';
import { externalLocations, readModel } from '../onnx/model-io.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { addTimeIds, sdxlConditioner } from '../pipelines/sdxl-conditioning.ts';
import { promptTokenizer } from '../pipelines/tokenizer.ts';
import { componentFiles, createComponentSession } from '../pipelines/onnx-component.ts';
import { defaultBeta, dpoBetaScale, type ModelKind } from './dpo-beta.ts';
import { createAdamW } from './optimizer.ts';
import { buildDpoGraph, dpoSessionOptions, type DpoGraph, type DpoGraphOptions, type WeightsPrecision } from './dpo-graph.ts';
import type { PlannedGraph } from './memory-plan.ts';
import type { ImageSource, PreferencePair } from './pairs.ts';
import { createRandom, type Random } from './random.ts';
import { checkLrSchedule, lrFactor, type LrSchedule } from './lr-schedule.ts';
import { createLatentEncoder } from './sd-latents.ts';
import type { CheckpointMode } from './unet-segments.ts';

type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;
type Feeds = Record<string, OrtCommon.Tensor>;

export interface ModelFiles {
  /** The embedded model's manifest, or a prepared SD model's (format 2: latents, CLIP tokenizer, sharded weights). */
  manifest: AnyManifest;
  /** Every file of the model directory by its manifest path (unet.onnx, unet.onnx.data, text_encoder.onnx, …). */
  files: ReadonlyMap<string, Uint8Array>;
}

export interface TrainerSetup {
  ort: Ort;
  model: ModelFiles;
  /** Prompts to encode once up front (every prompt of the pairs). */
  prompts: readonly string[];
  rank?: number; // default 8 (DESIGN §2)
  alpha?: number; // default = rank (scale 1)
  targets?: readonly string[];
  seed?: number; // LoRA init; default 0
  /** Prepared SD models: the training images' size in pixels (a multiple of the VAE factor); default the manifest's defaults. */
  resolution?: { width: number; height: number };
  sessionOptions?: OrtCommon.InferenceSession.SessionOptions;
  /** Activation checkpointing of the policy UNet (unet-segments.ts; memory-plan.ts's planWithCheckpointing chooses it); default 'off'. */
  checkpoint?: CheckpointMode;
  /**
   * The training graph the memory plan built from this model's UNet (planPreparedTraining's `built`), run instead of
   * building it again; refused unless it was built with exactly the options this run needs.
   */
  graph?: PlannedGraph;
  /** 'fp16': the frozen UNet weights stored as float16 (dpo-graph.ts); LoRA, gradients and AdamW stay float32. Default 'fp32'. */
  weights?: WeightsPrecision;
  /** Pairs per session run: attention's query chunks are sized for it (dpo-graph.ts); default 1. */
  batch?: number;
}

export interface DpoOutputs { loss: number; accuracy: number; modelDiff: Float32Array; refDiff: Float32Array; grads: Map<string, Float32Array> }

export interface DpoTrainer {
  graph: DpoGraph;
  /** The trainable tensors by graph input name (`<modulePath>.lora_A` / `.lora_B`), updated in place by AdamW. */
  params: Map<string, Float32Array>;
  scale: number;
  /** What the graph's β input is per unit of β_dpo: 0.5 for SDXL (its scripts' −0.5·β_dpo), 1 otherwise. */
  betaScale: number;
  /** One run of the DPO graph on these pairs (winner first), with ε from `noise` and t from `random`; `beta` is β_dpo. */
  run(pairs: readonly PreferencePair[], draw: { noise: NoiseGenerator; random: Random }, beta: number, scale?: number): Promise<DpoOutputs>;
  /** A copy of the current LoRA as a LoraSet (diffusers key format when serialized). */
  lora(metadata?: Record<string, string>): LoraSet;
  /**
   * The UNet's weight files by their keys in `model.files`: onnxruntime copied them into the session when it was
   * made, so the trainer reads them no more.
   */
  weightFiles: readonly string[];
  release(): Promise<void>;
}

export async function createDpoTrainer(setup: TrainerSetup): Promise<DpoTrainer> {
  const { ort, model } = setup;
  const { manifest } = model;
  const file = (path: string) => {
    const bytes = model.files.get(path);
    if (!bytes) throw new Error(`model file ${path} is listed in the manifest but was not loaded`);
    return bytes;
  };
  const rank = setup.rank ?? 8;
  const scale = (setup.alpha ?? rank) / rank;
  const source = isPrepared(manifest) ? await preparedSource(setup, manifest) : await embeddedSource(setup, manifest, file);
  const options: DpoGraphOptions = { rank, targets: setup.targets, predictionType: predictionTypeOf(manifest), imageDims: source.imageDims, contextDims: source.contextDims, checkpoint: setup.checkpoint ?? 'off', weights: setup.weights ?? 'fp32', batch: setup.batch ?? 1 };
  const graph = setup.graph ? plannedGraph(setup.graph, options) : buildDpoGraph(source.readUnet(), options);
  const alphaBar = trainingAlphas(manifest);
  const { contexts, added, timeIds, externalData } = source;
  const betaScale = dpoBetaScale(kindOf(manifest));
  // Optimisation level 'basic' unless the caller says otherwise: ORT's full optimisation of a training graph costs
  // minutes of setup for little (SD1.5 fixture 4× slower to set up; the SDXL fixture's 16,691-node graph did not get
  // through session creation in 285 s in Chromium's WASM, and takes 85 s in Node at 'basic').
  const files = new Map(externalData.map((e) => [e.path, e.data]));
  const session = await ort.InferenceSession.create(graph.training, dpoSessionOptions(graph, { graphOptimizationLevel: 'basic', ...setup.sessionOptions, externalData }, files));
  const params = initLora(graph, rank, setup.seed ?? 0);
  const imageSize = graph.imageDims.reduce((a, b) => a * b, 1);
  const contextSize = graph.contextDims.reduce((a, b) => a * b, 1);
  const addedSize = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
  const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

  return {
    graph,
    params,
    scale,
    betaScale,
    async run(pairs, draw, beta, runScale = scale) {
      const B = pairs.length;
      const [xw, xl, ctx] = [new Float32Array(B * imageSize), new Float32Array(B * imageSize), new Float32Array(B * contextSize)];
      const conditions = graph.added.map((c) => ({ ...c, data: new Float32Array(B * addedSize(c.dims)) }));
      const [t, ab] = [new Float32Array(B), new Float32Array(B)];
      pairs.forEach((p, i) => {
        checkImage(p.winner, imageSize, i);
        checkImage(p.loser, imageSize, i);
        xw.set(p.winner, i * imageSize);
        xl.set(p.loser, i * imageSize);
        const c = contexts.get(p.prompt);
        if (!c) throw new Error(`prompt ${JSON.stringify(p.prompt)} was not among the prompts given to createDpoTrainer`);
        ctx.set(c, i * contextSize);
        for (const cond of conditions) {
          const value = cond.name === 'time_ids' && timeIds ? timeIds(p) : added?.get(p.prompt)?.[cond.name];
          if (value?.length !== addedSize(cond.dims)) throw new Error(`the UNet takes ${cond.name} [${cond.dims}] per sample; the model's conditioning gives ${value ? `${value.length} values` : 'none'}`);
          cond.data.set(value, i * value.length);
        }
        const step = draw.random.int(alphaBar.length);
        t[i] = step;
        ab[i] = alphaBar[step];
      });
      const image = [B, ...graph.imageDims];
      const feeds: Feeds = {
        x_w: tensor(xw, image), x_l: tensor(xl, image), noise: tensor(draw.noise.randn(B * imageSize), image),
        alpha_bar: tensor(ab, [B]), timestep: tensor(t, [B]), context: tensor(ctx, [B, ...graph.contextDims]),
        beta_dpo: tensor(new Float32Array([beta * betaScale]), []), lora_scale: tensor(new Float32Array([runScale]), []),
      };
      for (const c of conditions) feeds[c.name] = tensor(c.data, [B, ...c.dims]);
      for (const l of graph.lora) {
        feeds[l.a] = tensor(params.get(l.a)!, [rank, l.site.inFeatures]);
        feeds[l.b] = tensor(params.get(l.b)!, [l.site.outFeatures, rank]);
      }
      const out = await session.run(feeds);
      const value = (name: string) => out[name].data as Float32Array;
      return {
        loss: value('loss')[0],
        accuracy: value('accuracy')[0],
        modelDiff: value('model_diff').slice(),
        refDiff: value('ref_diff').slice(),
        grads: new Map([...params.keys()].map((k) => [k, value(`${k}_grad`).slice()])),
      };
    },
    lora(metadata = {}) {
      const entries = new Map(graph.lora.map((l) => [l.site.modulePath, {
        down: params.get(l.a)!.slice(), up: params.get(l.b)!.slice(), rank, scale,
        inFeatures: l.site.inFeatures, outFeatures: l.site.outFeatures, conv1x1: l.site.opType === 'Conv',
      }]));
      return { format: 'diffusers', entries, skipped: [], metadata };
    },
    weightFiles: source.weightFiles,
    release: () => session.release(),
  };
}

export interface TrainLoraOptions extends Omit<TrainerSetup, 'prompts'> {
  /**
   * Called once the trainer exists, before the first step, with `trainer.weightFiles`: a caller that owns
   * `model.files` may drop them (SD1.5's are 3.4 GB in float32, which `npm run train` would otherwise hold beside the
   * session's own copy for the whole run), and collect them while nothing else refers to them.
   */
  onUnetWeightsCopied?: (paths: readonly string[]) => void;
  pairs: readonly PreferencePair[];
  /** NPO: train on the pairs with winner and loser swapped. */
  reverse?: boolean;
  steps: number;
  beta?: number; // β_dpo, default defaultBeta(manifest): 2500 (embedded), 500 (SD1.5, the released NPO δ), 2000 (SDXL)
  lr?: number; // default 1e-4
  batch?: number; // pairs per step, default 8
  weightDecay?: number; // default 1e-2
  maxGradNorm?: number; // default 1
  /**
   * Mirror each drawn pair (both images together) with probability ½, as diffusers' DPO scripts do unless
   * --no_hflip. Off by default: the embedded world's captions say "left of" and "right of", and a mirrored image
   * contradicts them; people's own photos usually take it.
   */
  hflip?: boolean;
  /** Micro-batches of `batch` pairs whose gradients are averaged into one update (the scripts' --gradient_accumulation_steps); default 1. */
  gradAccum?: number;
  /** diffusers' --lr_scheduler (lr-schedule.ts); default 'constant'. */
  lrSchedule?: LrSchedule;
  /** diffusers' --lr_warmup_steps, in optimizer steps; default 0. */
  lrWarmup?: number;
  onStep?: (report: StepReport, trainer: DpoTrainer) => void | Promise<void>;
  signal?: AbortSignal;
}

export interface StepReport {
  step: number; // 1-based
  steps: number;
  loss: number;
  /** Implicit reward accuracy on this batch (of the pairs as trained: swapped when reverse). */
  accuracy: number;
  gradNorm: number;
  /** Steps per second since the first step began (session creation excluded). */
  stepsPerSecond: number;
  stepMs: number;
}

/**
 * An allocation the runtime could not make: onnxruntime's C++ bad_alloc or its allocators' messages (CPU EP, WASM's
 * heap at its limit), a WebGPU out-of-memory, or V8's RangeError for an ArrayBuffer.
 */
export function isAllocationFailure(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error);
  return /bad_alloc|Failed to allocate|out of memory|OutOfMemory|Array buffer allocation failed|Cannot enlarge memory|could not allocate/i.test(text);
}

const describeError = (error: unknown) => String((error as Error)?.message ?? error).split('\n')[0].slice(0, 200);

export class TrainingError extends Error {
  /** `step`: the step that failed; `lastGood`: the LoRA after `lastGoodStep` updates. */
  constructor(message: string, readonly step: number, readonly lastGood: LoraSet, readonly lastGoodStep: number) {
    super(message);
    this.name = 'TrainingError';
  }
}

export async function trainLora(o: TrainLoraOptions): Promise<{ lora: LoraSet; history: StepReport[] }> {
  const settings = {
    beta: o.beta ?? defaultBeta(kindOf(o.model.manifest)), lr: o.lr ?? 1e-4, batch: o.batch ?? 8, weightDecay: o.weightDecay ?? 1e-2, maxGradNorm: o.maxGradNorm ?? 1,
    gradAccum: o.gradAccum ?? 1, lrSchedule: o.lrSchedule ?? 'constant', lrWarmup: o.lrWarmup ?? 0,
  };
  checkSettings(o, settings);
  const seed = o.seed ?? 0;
  const trainer = await createDpoTrainer({ ...o, batch: settings.batch, seed, prompts: [...new Set(o.pairs.map((p) => p.prompt))] });
  o.onUnetWeightsCopied?.(trainer.weightFiles);
  const metadata = {
    trainer: 'npo-playground', objective: o.reverse ? 'NPO (reversed DPO)' : 'Diffusion-DPO', rank: String(trainer.graph.rank),
    beta_dpo: String(settings.beta), lr: String(settings.lr), seed: String(seed),
  };
  let given = o.pairs;
  let givenMirrored: readonly PreferencePair[] | undefined;
  try {
    given = await latentsOf(o, seed);
    // Mirrored images get latents of their own (the VAE is not mirror-symmetric), from a generator of their own, so
    // that the unmirrored latents are the same with and without hflip.
    if (o.hflip) {
      const { manifest } = o.model;
      const width = isPrepared(manifest) ? trainingResolution(manifest, o.resolution).width : manifest.unet.config.sampleSize;
      givenMirrored = await latentsOf({ ...o, pairs: o.pairs.map((p) => mirrorPair(p, width)) }, seed + MIRROR_SEED_OFFSET);
    }
  } catch (error) {
    await trainer.release();
    throw error;
  }
  const oriented = (set: readonly PreferencePair[]) => (o.reverse ? set.map((p) => ({ ...p, winner: p.loser, loser: p.winner })) : set);
  const pairs = oriented(given);
  const mirrored = givenMirrored && oriented(givenMirrored);
  const flips = createRandom(seed + MIRROR_SEED_OFFSET); // its own stream: noise, t and batches stay those of a run without flips
  const optimizer = createAdamW(trainer.params, { lr: settings.lr, weightDecay: settings.weightDecay, maxGradNorm: settings.maxGradNorm });
  const draw = { noise: createGenerator(seed), random: createRandom(seed ^ 0x5eed) };
  const batches = batchSampler(pairs.length, settings.batch, createRandom(seed + 1));
  const history: StepReport[] = [];
  let lastGood = { lora: trainer.lora({ ...metadata, steps: '0' }), step: 0 };
  const start = performance.now();
  try {
    for (let step = 1; step <= o.steps && !o.signal?.aborted; step++) {
      const t0 = performance.now();
      const micro: DpoOutputs[] = [];
      for (let k = 0; k < settings.gradAccum; k++) {
        const batch = batches().map((i) => (mirrored && flips.int(2) === 1 ? mirrored[i] : pairs[i]));
        try {
          micro.push(await trainer.run(batch, draw, settings.beta));
        } catch (error) {
          if (!isAllocationFailure(error)) throw error;
          // The parameters are still those before this step: they are the last good LoRA.
          const kept = { lora: trainer.lora({ ...metadata, steps: String(step - 1) }), step: step - 1 };
          throw new TrainingError(`step ${step}: out of memory (${describeError(error)}); training stopped, the LoRA as of step ${kept.step} is kept. `
            + `Lower the resolution, the batch (gradient accumulation keeps the effective batch) or the rank, or recompute activations (checkpointing layers)`, step, kept.lora, kept.step);
        }
      }
      const out = averaged(micro);
      // The last good LoRA is the last one whose loss was finite: these parameters, before this step's update.
      if (Number.isFinite(out.loss)) lastGood = { lora: trainer.lora({ ...metadata, steps: String(step - 1) }), step: step - 1 };
      const lr = settings.lr * lrFactor(settings.lrSchedule, step - 1, settings.lrWarmup, o.steps);
      const update = Number.isFinite(out.loss) ? optimizer.step(out.grads, lr) : { gradNorm: NaN, applied: false };
      if (!update.applied) {
        const what = Number.isFinite(out.loss) ? `the gradient norm is ${update.gradNorm}` : `the loss is ${out.loss}`;
        throw new TrainingError(`step ${step}: ${what} (β_dpo ${settings.beta}, lr ${settings.lr}); training stopped, `
          + `the LoRA as of step ${lastGood.step} (the last with a finite loss and gradient) is kept`, step, lastGood.lora, lastGood.step);
      }
      const now = performance.now();
      const report = { step, steps: o.steps, loss: out.loss, accuracy: out.accuracy, gradNorm: update.gradNorm, stepsPerSecond: (step * 1000) / (now - start), stepMs: now - t0 };
      history.push(report);
      await o.onStep?.(report, trainer);
    }
    return { lora: trainer.lora({ ...metadata, steps: String(history.length) }), history };
  } finally {
    await trainer.release();
  }
}

/**
 * One update's outputs from its micro-batches (gradient accumulation): the mean loss, accuracy and gradient, as
 * accelerate's accumulate() gives with the scripts' loss.mean() per micro-batch of equal size.
 */
function averaged(micro: DpoOutputs[]): Pick<DpoOutputs, 'loss' | 'accuracy' | 'grads'> {
  if (micro.length === 1) return micro[0];
  const grads = new Map<string, Float32Array>();
  for (const [name, g] of micro[0].grads) {
    const sum = new Float32Array(g.length);
    for (const m of micro) { const mg = m.grads.get(name)!; for (let i = 0; i < sum.length; i++) sum[i] += mg[i]; }
    for (let i = 0; i < sum.length; i++) sum[i] /= micro.length;
    grads.set(name, sum);
  }
  const mean = (f: (m: DpoOutputs) => number) => micro.reduce((s, m) => s + f(m), 0) / micro.length;
  return { loss: mean((m) => m.loss), accuracy: mean((m) => m.accuracy), grads };
}

/**
 * Prepared SD models train in latent space: each image once through the VAE encoder's posterior, sampled with a
 * generator seeded from the run's seed (sd-latents.ts). The embedded model trains on its pixels as they are.
 */
async function latentsOf(o: TrainLoraOptions, seed: number): Promise<readonly PreferencePair[]> {
  const { manifest, files } = o.model;
  if (!isPrepared(manifest)) return o.pairs;
  const encoder = await createLatentEncoder(o.ort, manifest, files, createGenerator(seed + LATENT_SEED_OFFSET), trainingResolution(manifest, o.resolution), o.sessionOptions);
  try {
    return await encoder.encodePairs(o.pairs);
  } finally {
    await encoder.release();
  }
}

/** The model's prediction type from its scheduler config: what the DPO graph's loss compares the UNet's output with. */
export function predictionTypeOf(manifest: { scheduler: Record<string, unknown> }): 'epsilon' | 'v_prediction' {
  const prediction = String(createScheduler('ddim', manifest.scheduler).config.prediction_type ?? 'epsilon');
  if (prediction !== 'epsilon' && prediction !== 'v_prediction') throw new Error(`training supports epsilon and v_prediction models, not ${prediction}`);
  return prediction;
}

/** The planned graph, when the options it was built with are the ones this run builds with (defaults filled in). */
function plannedGraph(planned: PlannedGraph, wanted: DpoGraphOptions): DpoGraph {
  const key = (o: DpoGraphOptions): Record<string, unknown> => ({
    rank: o.rank, targets: o.targets ?? 'default', predictionType: o.predictionType ?? 'epsilon', imageDims: o.imageDims ?? 'declared',
    contextDims: o.contextDims ?? 'declared', checkpoint: o.checkpoint ?? 'off', io: o.io ?? 'SD', weights: o.weights ?? 'fp32',
    attentionChunkBytes: o.attentionChunkBytes ?? 'default',
  });
  // Not compared: `batch`, which sizes attention's chunks only (any batch runs the same graph).
  const [have, want] = [key(planned.options), key(wanted)];
  const differing = Object.keys(want).filter((k) => JSON.stringify(have[k]) !== JSON.stringify(want[k]));
  if (differing.length) {
    throw new Error(`the planned training graph was built for other settings than this run's: ${differing.map((k) => `${k} ${JSON.stringify(have[k])} instead of ${JSON.stringify(want[k])}`).join(', ')}`);
  }
  return planned.graph;
}

/** The model family, for β_dpo's default and scale (dpo-beta.ts). */
function kindOf(manifest: AnyManifest): ModelKind {
  return isPrepared(manifest) ? manifest.kind : 'embedded';
}

/** The VAE sample's generator is seeded `seed + 3` (the step noise uses `seed`), so the two streams differ. */
export const LATENT_SEED_OFFSET = 3;
/** hflip's coin and its mirrored latents take streams of their own (`seed + 7`, and + 3 on that for the VAE sample). */
const MIRROR_SEED_OFFSET = 7;

/** A planar [3, H, W] image mirrored left to right (torchvision's RandomHorizontalFlip). */
export function mirrorImage(chw: Float32Array, width: number): Float32Array {
  const out = new Float32Array(chw.length);
  for (let row = 0; row < chw.length; row += width) {
    for (let x = 0; x < width; x++) out[row + x] = chw[row + width - 1 - x];
  }
  return out;
}

/** Both images of a pair mirrored (the scripts flip the pair's concatenated tensor: one coin for both). */
function mirrorPair(pair: PreferencePair, width: number): PreferencePair {
  return { ...pair, winner: mirrorImage(pair.winner, width), loser: mirrorImage(pair.loser, width) };
}

/** Indices of the next batch: epochs of shuffled pairs, as a DataLoader with shuffle=True (drop_last=False, cycling). */
function batchSampler(n: number, batch: number, random: Random): () => number[] {
  let order: number[] = [];
  return () => {
    const out: number[] = [];
    while (out.length < batch) {
      if (!order.length) order = random.permutation(n);
      out.push(order.pop()!);
    }
    return out;
  };
}

/** ᾱ_t for t = 0 … T−1 from the model's own scheduler config (diffusers' noise_scheduler.alphas_cumprod). */
export function trainingAlphas(manifest: { scheduler: Record<string, unknown> }): Float32Array {
  const config = createScheduler('ddim', manifest.scheduler).config;
  return Float32Array.from(alphasCumprod(makeBetas(config as never)));
}

interface UnetSource {
  /** The UNet graph, parsed only when the DPO graph is built here (not when a planned one is given). */
  readUnet(): ModelProto;
  externalData: { path: string; data: Uint8Array }[];
  /** The same files by their keys in `model.files` (for onUnetWeightsCopied). */
  weightFiles: string[];
  contexts: Map<string, Float32Array>;
  /** Per prompt, the UNet's added conditions by input name (SDXL: text_embeds). */
  added?: Map<string, Record<string, Float32Array>>;
  /** SDXL: a pair's time_ids (trainingTimeIds). */
  timeIds?: (pair: PreferencePair) => Float32Array;
  /** For exports with symbolic input dims (prepared models): one latent's [C, h, w] and one context's [L, D]. */
  imageDims?: number[];
  contextDims?: number[];
}

async function embeddedSource(setup: TrainerSetup, manifest: ModelManifest, file: (path: string) => Uint8Array): Promise<UnetSource> {
  const unet = readModel(file(manifest.unet.file));
  const externalData = externalLocations(unet).map((path) => ({ path, data: file(path) }));
  const contexts = await encodePrompts(setup.ort, file(manifest.textEncoder.file), setup.prompts, manifest.textEncoder.config.contextLength, setup.sessionOptions);
  return { readUnet: () => unet, externalData, weightFiles: externalData.map((e) => e.path), contexts };
}

/**
 * A prepared SD model (manifest format 2): the UNet graph with its weight shards, the prompts through the model's own
 * CLIP tokenizer and text encoder (last_hidden_state, as diffusers' encode_prompt; SDXL: both encoders, as its
 * pipeline), latents of the training resolution (the manifest's default width × height over the VAE factor).
 */
async function preparedSource(setup: TrainerSetup, manifest: PreparedManifest): Promise<UnetSource> {
  const { model } = setup;
  // SDXL's VAE says force_upcast (it overflows in fp16): with float32 components, as required here, it runs in float32.
  const components = { unet: manifest.unet, textEncoder: manifest.textEncoder, vaeEncoder: manifest.vaeEncoder, textEncoder2: manifest.sdxl?.textEncoder2 };
  const half = Object.entries(components).filter(([, c]) => c && c.dtype !== 'float32');
  if (half.length) {
    throw new Error(`training needs a float32 model for now; ${manifest.name} has ${half.map(([name, c]) => `${name} in ${c!.dtype}`).join(', ')} `
      + '(prepare it with `npm run prepare-model -- --dtype float32`; training with weights fp16 then stores its weights as float16)');
  }
  const unetBytes = model.files.get(manifest.unet.file);
  if (!unetBytes) throw new Error(`model file ${manifest.unet.file} is listed in the manifest but was not loaded`);
  const externalData = [...componentFiles(manifest.unet, model.files)].map(([path, data]) => ({ path, data }));
  const { latent, context } = manifest;
  const { width, height } = trainingResolution(manifest, setup.resolution);
  const encoded = manifest.kind === 'sdxl' ? await sdxlPrompts(setup, manifest, { width, height }) : { contexts: await sd15Prompts(setup, manifest) };
  return {
    readUnet: () => readModel(unetBytes), externalData, weightFiles: manifest.unet.externalData, ...encoded,
    imageDims: [latent.channels, height / latent.vaeScaleFactor, width / latent.vaeScaleFactor],
    contextDims: [context.length, context.dim],
  };
}

async function sd15Prompts(setup: TrainerSetup, manifest: PreparedManifest): Promise<Map<string, Float32Array>> {
  const { ort, model } = setup;
  const tokenizer = promptTokenizer(manifest, model.files);
  const textEncoder = await createComponentSession(ort, manifest.textEncoder, model.files, setup.sessionOptions);
  const contexts = new Map<string, Float32Array>();
  try {
    for (const prompt of setup.prompts) {
      const ids = tokenizer.encode(prompt).ids;
      const input = manifest.textEncoder.inputs.input_ids === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) : new ort.Tensor('int32', Int32Array.from(ids), [1, ids.length]);
      const out = await textEncoder.run({ input_ids: input });
      contexts.set(prompt, (out[manifest.textEncoder.outputs[0] ?? 'last_hidden_state'].data as Float32Array).slice());
    }
  } finally {
    await textEncoder.release();
  }
  return contexts;
}

/** SDXL: context and text_embeds from the pipeline's own encode_prompt; time_ids per pair from its source image. */
async function sdxlPrompts(setup: TrainerSetup, manifest: PreparedManifest, size: { width: number; height: number }) {
  const { ort, model } = setup;
  const tokenizers: [ReturnType<typeof promptTokenizer>, ReturnType<typeof promptTokenizer>] = [promptTokenizer(manifest, model.files), promptTokenizer(manifest, model.files, manifest.sdxl!.tokenizer2.dir)];
  const conditioner = await sdxlConditioner(ort, manifest, model.files, tokenizers, { sessionOptions: setup.sessionOptions });
  const contexts = new Map<string, Float32Array>();
  const added = new Map<string, Record<string, Float32Array>>();
  try {
    for (const prompt of setup.prompts) {
      const { context, pooled } = await conditioner.embeds(prompt);
      contexts.set(prompt, context);
      added.set(prompt, { text_embeds: pooled });
    }
  } finally {
    await conditioner.release();
  }
  return { contexts, added, timeIds: (pair: PreferencePair) => trainingTimeIds(pair.source, size) };
}

/**
 * SDXL's micro-conditioning for a training pair, as train_diffusion_dpo_sdxl.py's compute_time_ids:
 * (original height, width) + (crop top, left) + (training height, width). A pair without a recorded source (pairs
 * made at the training size: samples, clicks) is an uncropped image of the training size, diffusers' own default.
 */
export function trainingTimeIds(source: ImageSource | undefined, size: { width: number; height: number }): Float32Array {
  if (!source) return addTimeIds(size.height, size.width);
  return Float32Array.of(source.height, source.width, source.cropTop, source.cropLeft, size.height, size.width);
}

/** The pixel size prepared-model training runs at: the option, or the manifest's default; a multiple of the VAE factor. */
export function trainingResolution(manifest: PreparedManifest, resolution?: { width: number; height: number }) {
  const r = resolution ?? { width: manifest.defaults.width, height: manifest.defaults.height };
  const f = manifest.latent.vaeScaleFactor;
  for (const [k, v] of Object.entries(r)) {
    if (!Number.isSafeInteger(v) || v < f || v % f !== 0 || v > 4096) throw new Error(`training ${k} ${v} must be a positive multiple of the VAE factor ${f} (at most 4096)`);
  }
  return r;
}

function initLora(graph: DpoGraph, rank: number, seed: number): Map<string, Float32Array> {
  const random = createRandom(seed);
  const params = new Map<string, Float32Array>();
  for (const l of graph.lora) {
    params.set(l.a, Float32Array.from({ length: rank * l.site.inFeatures }, () => random.normal() / rank));
    params.set(l.b, new Float32Array(l.site.outFeatures * rank));
  }
  return params;
}

async function encodePrompts(ort: Ort, textEncoder: Uint8Array, prompts: readonly string[], length: number, options?: OrtCommon.InferenceSession.SessionOptions) {
  const session = await ort.InferenceSession.create(textEncoder, options);
  const contexts = new Map<string, Float32Array>();
  try {
    for (const prompt of prompts) {
      const ids = tokenize(prompt, length);
      const out = await session.run({ input_ids: new ort.Tensor('int64', ids, [1, ids.length]) });
      contexts.set(prompt, (out.last_hidden_state.data as Float32Array).slice());
    }
  } finally {
    await session.release();
  }
  return contexts;
}

function checkImage(image: Float32Array, size: number, index: number) {
  if (image.length !== size) throw new Error(`pair ${index}: an image has ${image.length} values; the model takes ${size}`);
}

function checkSettings(o: TrainLoraOptions, s: { beta: number; lr: number; batch: number; gradAccum: number; lrSchedule: string; lrWarmup: number }) {
  if (!o.pairs.length) throw new Error('trainLora: no pairs');
  if (!Number.isSafeInteger(s.gradAccum) || s.gradAccum < 1) throw new Error(`trainLora: gradient accumulation must be a positive integer, got ${s.gradAccum}`);
  checkLrSchedule(s.lrSchedule, s.lrWarmup);
  if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new Error(`trainLora: steps must be a positive integer, got ${o.steps}`);
  if (!Number.isSafeInteger(s.batch) || s.batch < 1) throw new Error(`trainLora: batch must be a positive integer, got ${s.batch}`);
  if (!(s.beta > 0) || !Number.isFinite(s.beta)) throw new Error(`trainLora: beta must be positive, got ${s.beta}`);
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) throw new Error(`trainLora: lr must be positive, got ${s.lr}`);
  if (o.rank !== undefined && (!Number.isSafeInteger(o.rank) || o.rank < 1)) throw new Error(`trainLora: rank must be a positive integer, got ${o.rank}`);
}

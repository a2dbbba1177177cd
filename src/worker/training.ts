// In-browser LoRA training, run by the worker: a person's pairs.json → a DPO LoRA (η-like) or, with `reverse`, an NPO
// LoRA (δ) on the loaded model, with a progress event per step and the result as diffusers-format safetensors bytes
// the page can use as δ at once or download. The loop itself is src/train's, the same code the Node CLI runs.
import type * as OrtCommon from 'onnxruntime-common';
import { tokenize } from '../embedded/tokenizer.ts';
import { serializeLora } from '../lora/serialize.ts';
import { isPrepared, type AnyManifest, type PreparedManifest } from '../model/manifest.ts';
import { planTrainingRun, type DeviceLimits, type PlannedGraph } from '../train/memory-plan.ts';
import type { CheckpointMode } from '../train/unet-segments.ts';
import type { WeightsPrecision } from '../train/dpo-graph.ts';
import { parsePairs, parsePairsAtOwnSize } from '../train/pairs.ts';
import { trainingResolution, trainLora, TrainingError, type StepReport } from '../train/train-lora.ts';
import type { TrainOptions } from './protocol.ts';

type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;

export interface TrainJob {
  ort: Ort;
  manifest: AnyManifest;
  files: ReadonlyMap<string, Uint8Array>;
  /** What the backend can hold; a prepared model's training is planned against it before anything is built. */
  limits?: DeviceLimits;
  sessionOptions?: OrtCommon.InferenceSession.SessionOptions;
  pairsJson: string;
  options: TrainOptions;
  onStep(report: StepReport): void | Promise<void>;
  /** 'fp16': frozen weights stored as float16 (dpo-graph.ts), where the device has shader-f16; default 'fp32'. */
  weights?: WeightsPrecision;
  /** The memory plan's choice of activation checkpointing, before anything is built (prepared models). */
  onPlan?(checkpoint: CheckpointMode, summary: string): void;
  signal: AbortSignal;
}

export interface TrainResult {
  lora: Uint8Array;
  steps: number;
  /** Set when training stopped early (NaN loss): the result is the last good LoRA. */
  warning?: string;
}

export async function runTraining(job: TrainJob): Promise<TrainResult> {
  const { manifest, options } = job;
  let resolution: { width: number; height: number } | undefined;
  const choice = options.checkpoint ?? 'auto';
  let checkpoint: CheckpointMode = choice === 'auto' ? 'off' : choice;
  let planned: PlannedGraph | undefined; // the plan's training graph, which the trainer then runs rather than builds again
  let micro = { batch: options.batch, accumulation: 1, arena: true }; // the plan's micro-batch (where the whole batch does not fit) and arena
  let pairs;
  if (isPrepared(manifest)) {
    // Prepared models train at the chosen resolution, else at the pairs file's own size, planned before decoding.
    pairs = parsePairsAtOwnSize(job.pairsJson, (width, height, count) => {
      resolution = trainingResolution(manifest, options.resolution ? { width: options.resolution, height: options.resolution } : { width, height });
      const plan = checkPlan(manifest, job, resolution, count);
      if (plan) ({ checkpoint, built: planned, micro } = plan);
      return resolution;
    });
  } else {
    const size = manifest.unet.config.sampleSize;
    const contextLength = manifest.textEncoder.config.contextLength;
    pairs = parsePairs(job.pairsJson, { width: size, height: size, checkPrompt: (p) => void tokenize(p, contextLength) });
  }
  const metadata = { role: options.reverse ? 'delta (NPO)' : 'eta (DPO)', base_model: manifest.name };
  let started = false;
  const train = (weights: WeightsPrecision | undefined, graph: PlannedGraph | undefined, checkpointing: CheckpointMode) => trainLora({
    ort: job.ort,
    model: { manifest, files: job.files },
    sessionOptions: micro.arena ? job.sessionOptions : { ...job.sessionOptions, enableCpuMemArena: false },
    pairs,
    reverse: options.reverse,
    rank: options.rank,
    steps: options.steps,
    beta: options.beta,
    lr: options.lr,
    batch: Math.min(micro.batch, pairs.length),
    seed: options.seed,
    resolution,
    checkpoint: checkpointing,
    hflip: options.hflip,
    gradAccum: (options.gradAccum ?? 1) * micro.accumulation,
    lrSchedule: options.lrSchedule,
    lrWarmup: options.lrWarmup,
    graph,
    weights,
    signal: job.signal,
    onStep: (report) => ((started = true), job.onStep(report)),
  });
  try {
    let notice: string | undefined;
    const { lora, history } = await train(job.weights, planned, checkpoint).catch(async (error: unknown) => {
      // float16 frozen weights are chosen by feature detection (shader-f16) and have never run on a real GPU in our
      // tests: if their session cannot be made, the same run with float32 weights, planned again, is what a person
      // wants, with a word on why. Errors after the first step, NaN stops and cancels are not the weights' doing.
      if (job.weights !== 'fp16' || started || error instanceof TrainingError || job.signal.aborted) throw error;
      notice = `float16 frozen weights failed on this device (${(error as Error).message ?? String(error)}), so training ran with float32 weights`;
      const replanned = isPrepared(manifest) && resolution ? checkPlan(manifest, { ...job, weights: 'fp32' }, resolution, pairs.length) : undefined;
      if (replanned) micro = replanned.micro;
      return train('fp32', replanned?.built, replanned?.checkpoint ?? checkpoint);
    });
    if (job.signal.aborted && history.length === 0) throw new DOMException('training was cancelled', 'AbortError');
    // Stopped part way: the steps done are kept, and the page says so.
    const cancelled = job.signal.aborted ? `training cancelled after step ${history.length} of ${options.steps}; the LoRA of step ${history.length} is kept` : undefined;
    const warning = [notice, cancelled].filter(Boolean).join('; ') || undefined;
    return { lora: serializeLora(lora, 'diffusers', { metadata: { ...lora.metadata, ...metadata } }), steps: history.length, ...(warning ? { warning } : {}) };
  } catch (error) {
    if (!(error instanceof TrainingError)) throw error;
    const lora = serializeLora(error.lastGood, 'diffusers', { metadata: { ...error.lastGood.metadata, ...metadata } });
    return { lora, steps: error.lastGoodStep, warning: error.message };
  }
}

/**
 * Plans the run (src/train/memory-plan.ts), recomputing activations or accumulating smaller micro-batches where that
 * makes it fit, and refuses with the plan's numbers a configuration that exceeds the backend's limits even so. Returns
 * the checkpointing and micro-batch chosen and the training graph planned with them.
 */
function checkPlan(manifest: PreparedManifest, job: TrainJob, resolution: { width: number; height: number }, pairs: number): { checkpoint: CheckpointMode; built: PlannedGraph; micro: { batch: number; accumulation: number; arena: boolean } } | undefined {
  if (!job.limits) return undefined;
  const unet = job.files.get(manifest.unet.file);
  if (!unet) throw new Error(`model file ${manifest.unet.file} is listed in the manifest but was not loaded`);
  const batch = Math.max(1, Math.min(job.options.batch, pairs)); // the batch trained: a set smaller than the batch is one batch
  const chosen = planTrainingRun(manifest, unet, { ...resolution, batch, rank: job.options.rank, weights: job.weights }, job.limits, job.options.checkpoint ?? 'auto');
  if (chosen.problem) throw new Error(chosen.problem);
  job.onPlan?.(chosen.checkpoint, chosen.summary);
  return { checkpoint: chosen.checkpoint, built: chosen.built, micro: { batch: chosen.batch, accumulation: chosen.accumulation, arena: chosen.arena } };
}

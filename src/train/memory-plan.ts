// The memory a DPO/NPO training step needs, planned from the UNet graph's real layer shapes before anything is
// allocated (issue 14: refuse with the numbers when it will not fit). The plan builds the step's own training graph
// (dpo-graph.ts: policy and reference copies of the UNet on the 2B batch [x_w; x_l], the loss and every LoRA gradient)
// and sums:
//   weights      every UNet initializer once (both copies share them), at its stored dtype, or with weights 'fp16'
//                (dpo-graph.ts: frozen weights stored as float16, LoRA and AdamW float32) the converted ones at 2 bytes;
//                their float32 Casts (one per reading node, freed after it) are activations of the planned graph;
//   activations  the peak of the intermediate values alive at once when onnxruntime runs that graph in its own order
//                (src/onnx/execution-memory.ts): forward values live until the backward pass has read them;
//   transient    kernel scratch that is not a graph value (Conv's im2col, GEMM packing) and the runtime's own
//                buffers: 2 × the largest value + the runtime's own (128 MiB, or 64 MiB + 6 KiB per node of a large
//                graph) + 15 % of the activations (the allocator's waste), sized
//                from measurements (npm run bench:train:sd, where the
//                plan is printed beside the measured peak of a real step; -- --plan-check over a grid). The plan
//                bounds a step run with ORT's CPU arena off; with it on, the arena may hold more (ARENA_FACTOR);
//   lora         A and B (float32), their gradients and AdamW's two moments: 4 × 4 bytes per LoRA parameter.
// With activation checkpointing (unet-segments.ts, src/onnx/autodiff/checkpoint.ts) the plan is of the checkpointed
// graph; planWithCheckpointing tries none, then UNet blocks, then layers (coarse to fine) until one fits.
import { createShapeEnv, inferNode, isFloatType } from '../onnx/autodiff/shapes.ts';
import { ortExecutionOrder, simulatePeakMemory } from '../onnx/execution-memory.ts';
import { readModel } from '../onnx/model-io.ts';
import { int, type GraphProto, type ModelProto } from '../onnx/proto.ts';
import { bytesPer } from '../onnx/tensor.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { buildDpoGraph, type DpoGraph, type DpoGraphOptions, type WeightsPrecision } from './dpo-graph.ts';
import { predictionTypeOf } from './train-lora.ts';
import { CHECKPOINT_CHOICES, CHECKPOINT_MODES, type CheckpointChoice, type CheckpointMode } from './unet-segments.ts';

export interface TrainMemoryOptions {
  /** Pairs per step (B); each UNet copy runs on 2B samples. */
  batch: number;
  /** One latent's [C, h, w] (SD1.5 at 512²: [4, 64, 64]). */
  latentDims: readonly number[];
  /** One context's [L, D] (SD1.5: [77, 768]). */
  contextDims: readonly number[];
  rank: number;
  targets?: readonly string[];
  /** Bytes per activation element: 4 (float32 graphs) or 2 (fp16). Default: each value's own element size. */
  activationBytes?: number;
  /** Bytes per weight element, to plan for weights stored otherwise (2: an fp16 copy). Default: as stored. */
  weightBytes?: number;
  /** Activation checkpointing of the policy UNet (unet-segments.ts); default 'off'. */
  checkpoint?: CheckpointMode;
  /** The model's prediction type, so that the graph planned is the one the trainer runs (its loss); default epsilon. */
  predictionType?: DpoGraphOptions['predictionType'];
  /** The frozen weights' storage in the training graph (dpo-graph.ts); default 'fp32' (as stored). */
  weights?: WeightsPrecision;
  /** Attention's query chunks (dpo-graph.ts); default its SCORE_CHUNK_BYTES, Infinity: as exported. */
  attentionChunkBytes?: number;
}

export interface TrainMemoryPlan {
  weightsBytes: number;
  activationsBytes: number;
  transientBytes: number;
  loraBytes: number;
  totalBytes: number;
  /** The largest single activation: it must fit the adapter's maxBufferSize / maxStorageBufferBindingSize. */
  largestTensorBytes: number;
  /** LoRA parameters (A and B of every site). */
  loraParams: number;
  /** Float values whose shape inference failed, left out of the sums (in torch's SD exports: the time-embedding vectors, [2B, ≤1280] each, whose batch dim comes from an Expand of the timestep). */
  unknownValues: number;
  /** The activation checkpointing the graph was planned with. */
  checkpoint: CheckpointMode;
  /** The weights' storage the graph was planned with. */
  weights: WeightsPrecision;
}

/**
 * The runtime's own memory beside its largest values: at least 128 MiB (with 64 MiB a step of the tiny SD1.5 at 16²
 * latents measured 0.14 GiB with ORT's arena off against 0.12 planned), and for large graphs 64 MiB + 6 KiB per node:
 * onnxruntime's session (its graph, kernels and execution plan) grew the process by 4.5–4.9 KB per node of the tiny
 * SDXL export's training graphs (108 MB at 23,801 nodes, 148 MB at 32,046 with layers checkpointing and fp16 weights),
 * over the flat 128 MiB (`npm run bench:train:sd -- --plan-check`).
 */
function runtimeAllowance(nodes: number): number {
  return Math.max(128 * 2 ** 20, 64 * 2 ** 20 + 6 * 1024 * nodes);
}
/**
 * The allocator's own waste beside the values (with ORT's CPU arena off, malloc's heap fragments as chunk-sized values
 * come and go): a share of the simulated peak. Without it, steps of the tiny SD1.5 at 48²–64² latents measured up to
 * 9 % above the plan (`npm run bench:train:sd -- --plan-check`); 15 % keeps every cell of the grid under the plan.
 */
const ALLOCATOR_SHARE = 0.15;

export function planTrainingMemory(unet: ModelProto, o: TrainMemoryOptions): TrainMemoryPlan {
  return planGraph(unet, o).plan;
}

/**
 * The training graph a plan was made of, with the options it was built with: the trainer runs it instead of building
 * it again (train-lora.ts checks the options match its own), which for a real SD UNet saves seconds and the graph's
 * memory twice over.
 */
export interface PlannedGraph { graph: DpoGraph; options: DpoGraphOptions }

function planGraph(unet: ModelProto, o: TrainMemoryOptions): { plan: TrainMemoryPlan; built: PlannedGraph } {
  if (!Number.isSafeInteger(o.batch) || o.batch < 1) throw new Error(`memory plan: batch ${o.batch} must be a positive integer`);
  const options: DpoGraphOptions = { rank: o.rank, targets: o.targets, imageDims: o.latentDims, contextDims: o.contextDims, checkpoint: o.checkpoint ?? 'off', predictionType: o.predictionType, weights: o.weights ?? 'fp32', batch: o.batch, attentionChunkBytes: o.attentionChunkBytes };
  const dpo = buildDpoGraph(unet, options);
  const graph = withBatch(readModel(dpo.training).graph!, o.batch);
  const env = createShapeEnv(graph);
  for (const node of graph.node ?? []) inferNode(node, env);

  const stored = new Set([...(graph.initializer ?? []).map((t) => t.name), ...(graph.input ?? []).map((v) => v.name)]);
  let unknownValues = 0;
  const bytesOf = (value: string): number | null => {
    if (stored.has(value)) return null;
    const t = env.types.get(value);
    if (!t?.dims?.every((d) => typeof d === 'number')) {
      if (!t || isFloatType(t.elemType)) unknownValues++;
      return null;
    }
    const element = o.activationBytes !== undefined && isFloatType(t.elemType) ? o.activationBytes : bytesPer(t.elemType ?? 1);
    return (t.dims as number[]).reduce((a, b) => a * b, 1) * element;
  };
  const outputs = (graph.output ?? []).map((v) => v.name!);
  const { peakBytes, largestBytes } = simulatePeakMemory(ortExecutionOrder(graph.node ?? []), outputs, bytesOf);

  const half = new Set(dpo.float16?.converted);
  const elementBytes = (name: string, type: number) => o.weightBytes ?? (half.has(name) ? 2 : bytesPer(type));
  const weightsBytes = (unet.graph!.initializer ?? []).reduce((sum, t) => sum + (t.dims ?? []).map(int).reduce((a, b) => a * b, 1) * elementBytes(t.name ?? '', t.dataType ?? 1), 0);
  const loraParams = dpo.lora.reduce((sum, l) => sum + o.rank * (l.site.inFeatures + l.site.outFeatures), 0);
  const loraBytes = 4 * 4 * loraParams;
  const transientBytes = 2 * largestBytes + runtimeAllowance(graph.node?.length ?? 0) + Math.ceil(ALLOCATOR_SHARE * peakBytes);
  const plan = {
    weightsBytes, activationsBytes: peakBytes, transientBytes, loraBytes, totalBytes: weightsBytes + peakBytes + transientBytes + loraBytes,
    largestTensorBytes: largestBytes, loraParams, unknownValues, checkpoint: o.checkpoint ?? 'off', weights: dpo.weights,
  };
  return { plan, built: { graph: dpo, options } };
}

/** The training graph with its symbolic batch dim ('pairs') fixed to `batch` in every input. */
function withBatch(graph: GraphProto, batch: number): GraphProto {
  const input = (graph.input ?? []).map((v) => {
    const dims = v.type?.tensorType?.shape?.dim;
    if (!dims?.length || !dims[0].dimParam) return v;
    const shape = { dim: [{ dimValue: batch }, ...dims.slice(1)] };
    return { ...v, type: { ...v.type, tensorType: { ...v.type!.tensorType, shape } } };
  });
  return { ...graph, input };
}

export interface DeviceLimits {
  /** Memory the backend can use in all (e.g. WASM's 4 GiB heap, or what the person says the GPU has). */
  memoryBytes?: number;
  /** The adapter's maxBufferSize / maxStorageBufferBindingSize (the smaller). */
  maxBufferBytes?: number;
  /**
   * Memory to aim for when choosing activation checkpointing, not a limit (WebGPU does not expose an adapter's
   * memory: the worker aims at 8 GiB, the issue's class of adapters). A plan above it is not refused.
   */
  budgetBytes?: number;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** Null when the plan fits; otherwise a message with the numbers and what to lower. */
export function trainingFitProblem(plan: TrainMemoryPlan, limits: DeviceLimits, what: string): string | null {
  const parts = `weights ${mib(plan.weightsBytes)} + activations ${mib(plan.activationsBytes)} + transient ${mib(plan.transientBytes)} + LoRA/AdamW ${mib(plan.loraBytes)}`;
  if (limits.memoryBytes !== undefined && plan.totalBytes > limits.memoryBytes) {
    return `training ${what} needs about ${mib(plan.totalBytes)} (${parts}); this backend has ${mib(limits.memoryBytes)}. Lower the resolution or the batch${plan.checkpoint === 'off' ? ', or recompute activations (checkpointing)' : ''}`;
  }
  if (limits.maxBufferBytes !== undefined && plan.largestTensorBytes > limits.maxBufferBytes) {
    return `training ${what} needs a ${mib(plan.largestTensorBytes)} activation buffer; the adapter allows ${mib(limits.maxBufferBytes)} per buffer. Lower the resolution or the batch`;
  }
  return null;
}

export interface CheckpointedPlan {
  /** The mode the trainer builds its graph with. */
  checkpoint: CheckpointMode;
  plan: TrainMemoryPlan;
  /** The plan without checkpointing (the same object as `plan` when the mode is 'off'). */
  without: TrainMemoryPlan;
  /** Null when `plan` fits the limits; else the refusal, with every plan tried. */
  problem: string | null;
  /** One line for the page and the CLI: the weights' precision, the mode and the planned totals with and without it. */
  summary: string;
  /** The training graph of `plan` (the chosen mode), for trainLora's `graph` option. */
  built: PlannedGraph;
}

/**
 * Plans the configuration without checkpointing and, when it does not fit (or `choice` forces a mode), with the
 * UNet's blocks, then layers, recomputed: the first that fits is chosen. `what` names the configuration in messages.
 */
export function planWithCheckpointing(unet: ModelProto, o: Omit<TrainMemoryOptions, 'checkpoint'>, limits: DeviceLimits, choice: CheckpointChoice, what: string): CheckpointedPlan {
  if (!CHECKPOINT_CHOICES.includes(choice)) throw new Error(`checkpoint must be one of ${CHECKPOINT_CHOICES.join(', ')}, got ${String(choice)}`);
  const off = planGraph(unet, { ...o, checkpoint: 'off' });
  const without = off.plan;
  const modes: CheckpointMode[] = choice === 'auto' ? [...CHECKPOINT_MODES] : [choice];
  const tried: [CheckpointMode, TrainMemoryPlan, string | null][] = [];
  let built = off.built; // only the last mode's graph is kept: the one chosen
  for (const mode of modes) {
    let plan = without;
    if (mode !== 'off') ({ plan, built } = planGraph(unet, { ...o, checkpoint: mode }));
    const problem = trainingFitProblem(plan, limits, what);
    tried.push([mode, plan, problem]);
    if (!problem && !(limits.budgetBytes !== undefined && plan.totalBytes > limits.budgetBytes)) break;
  }
  const [checkpoint, plan, problem] = tried[tried.length - 1];
  const others = tried.length > 1 ? `; tried ${tried.map(([m, p]) => `${m} ${gib(p.totalBytes)}`).join(', ')}` : '';
  const budget = limits.budgetBytes !== undefined && plan.totalBytes > limits.budgetBytes ? `, above the ${gib(limits.budgetBytes)} aimed at` : '';
  const summary = `weights ${plan.weights}, ` + (checkpoint === 'off'
    ? `memory plan ${gib(plan.totalBytes)} without checkpointing${budget}${others}`
    : `checkpointing ${checkpoint}: memory plan ${gib(plan.totalBytes)}${budget} (${gib(without.totalBytes)} without; activations ${gib(plan.activationsBytes)} instead of ${gib(without.activationsBytes)})${others}`);
  return { checkpoint, plan, without, problem: problem && (tried.length > 1 ? `${problem} (${summary})` : problem), summary, built };
}

/** planWithCheckpointing for a prepared SD model's UNet graph (its bytes) at a training size, batch and rank. */
export function planPreparedTraining(manifest: PreparedManifest, unetBytes: Uint8Array, run: { width: number; height: number; batch: number; rank: number; weights?: WeightsPrecision }, limits: DeviceLimits, choice: CheckpointChoice): CheckpointedPlan {
  const f = manifest.latent.vaeScaleFactor;
  const o = {
    batch: run.batch, rank: run.rank, weights: run.weights, latentDims: [manifest.latent.channels, run.height / f, run.width / f], contextDims: [manifest.context.length, manifest.context.dim],
    predictionType: predictionTypeOf(manifest),
  };
  const what = `${manifest.name} at ${run.width}×${run.height}, batch ${run.batch}, rank ${run.rank}`;
  return planWithCheckpointing(readModel(unetBytes), o, limits, choice, what);
}

/**
 * A run's plan with the micro-batch it runs (`batch` pairs per session run, `accumulation` runs per update) and
 * whether ORT's CPU arena may be on (`arena`).
 */
export interface RunPlan extends CheckpointedPlan { batch: number; accumulation: number; arena: boolean }

/**
 * What ORT's CPU arena (a BFC allocator: regions grown by doubling, freed blocks kept binned by size) may hold beyond
 * the values' peak, as a factor of the plan. The plan bounds a step with the arena off (`npm run bench:train:sd --
 * --plan-check`: 1.04–1.60× the measured peak over its grid); with it on a step ran up to 1.17× the plan (the tiny
 * SD1.5 at 512², layers), at about twice the speed (9.4 vs 20.5 s a step). The arena stays on where twice the plan
 * fits the memory, and is turned off where only the plan does, so that the plan bounds the step.
 */
export const ARENA_FACTOR = 2;

/**
 * planPreparedTraining, and where the batch does not fit even with checkpointing, smaller micro-batches (divisors of
 * the batch, largest first) whose gradients are accumulated to the same effective batch (diffusers' scripts'
 * --gradient_accumulation_steps): the first that fits, or the batch's refusal when none does.
 */
export function planTrainingRun(manifest: PreparedManifest, unetBytes: Uint8Array, run: { width: number; height: number; batch: number; rank: number; weights?: WeightsPrecision }, limits: DeviceLimits, choice: CheckpointChoice): RunPlan {
  const withArena = (p: CheckpointedPlan, batch: number, accumulation: number): RunPlan => {
    const arena = limits.memoryBytes === undefined || ARENA_FACTOR * p.plan.totalBytes <= limits.memoryBytes;
    const summary = arena ? p.summary : `${p.summary}; ORT's CPU arena off (it may hold up to ${ARENA_FACTOR}× the plan, over the ${gib(limits.memoryBytes!)} available)`;
    return { ...p, summary, batch, accumulation, arena };
  };
  const whole = planPreparedTraining(manifest, unetBytes, run, limits, choice);
  if (!whole.problem) return withArena(whole, run.batch, 1);
  for (let micro = run.batch - 1; micro >= 1; micro--) {
    if (run.batch % micro) continue;
    const chosen = planPreparedTraining(manifest, unetBytes, { ...run, batch: micro }, limits, choice);
    if (chosen.problem) continue;
    const accumulation = run.batch / micro;
    const summary = `batch ${run.batch} does not fit (${whole.summary}); micro-batches of ${micro} with gradient accumulation ×${accumulation} (the same effective batch): ${chosen.summary}`;
    return withArena({ ...chosen, summary }, micro, accumulation);
  }
  return withArena(whole, run.batch, 1);
}

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

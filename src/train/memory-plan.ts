// The memory a DPO/NPO training step needs, planned from the UNet graph's real layer shapes before anything is
// allocated (issue 14: refuse with the numbers when it will not fit). One step of the DPO graph (dpo-graph.ts) runs
// two copies of the UNet on the 2B batch [x_w; x_l]:
//   weights      every UNet initializer once (both copies share them), at its stored dtype;
//   activations  the policy copy's forward values, kept for the backward pass: every float value a policy node
//                produces, by static shape inference at batch 2B (autodiff/shapes.ts), except outputs of ops that
//                ORT aliases (Reshape, Squeeze, Unsqueeze, Flatten, Identity) and shape arithmetic. An upper bound:
//                some of them (inputs of Add, say) are not needed by any gradient rule and ORT frees them early;
//   transient    what is alive besides: the reference copy's forward and the backward pass each hold a few values
//                of the largest layer at a time; planned as 4 × the largest activation;
//   lora         A and B (float32), their gradients and AdamW's two moments: 4 × 4 bytes per LoRA parameter.
// No recomputation (activation checkpointing) yet: the plan says what the graph as built needs.
import { ATTENTION_TARGETS, findLoraSites } from '../onnx/lora-sites.ts';
import { inferNode, createShapeEnv, isFloatType } from '../onnx/autodiff/shapes.ts';
import { topologicalOrder } from '../onnx/autodiff/index.ts';
import { int, type ModelProto } from '../onnx/proto.ts';
import { bytesPer } from '../onnx/tensor.ts';

export interface TrainMemoryOptions {
  /** Pairs per step (B); each UNet copy runs on 2B samples. */
  batch: number;
  /** One latent's [C, h, w] (SD1.5 at 512²: [4, 64, 64]). */
  latentDims: readonly number[];
  /** One context's [L, D] (SD1.5: [77, 768]). */
  contextDims: readonly number[];
  rank: number;
  targets?: readonly string[];
  /** Bytes per activation element: 4 (float32 graphs) or 2 (fp16). Default: the UNet weights' element size. */
  activationBytes?: number;
  /** Bytes per weight element, to plan for weights stored otherwise (2: an fp16 copy). Default: as stored. */
  weightBytes?: number;
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
}

const ALIASES = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity']);

export function planTrainingMemory(unet: ModelProto, o: TrainMemoryOptions): TrainMemoryPlan {
  if (!Number.isSafeInteger(o.batch) || o.batch < 1) throw new Error(`memory plan: batch ${o.batch} must be a positive integer`);
  const graph = unet.graph!;
  const n = 2 * o.batch;
  const staticInputs = (graph.input ?? []).map((v) => {
    const fixed = v.name === 'sample' ? [n, ...o.latentDims] : v.name === 'encoder_hidden_states' ? [n, ...o.contextDims] : v.name === 'timestep' ? [n] : null;
    if (!fixed) return v;
    return { ...v, type: { ...v.type, tensorType: { ...v.type!.tensorType, shape: { dim: fixed.map((d) => ({ dimValue: d })) } } } };
  });
  const env = createShapeEnv({ ...graph, input: staticInputs });
  const weightsBytes = (graph.initializer ?? []).reduce((sum, t) => sum + (t.dims ?? []).map(int).reduce((a, b) => a * b, 1) * (o.weightBytes ?? bytesPer(t.dataType ?? 1)), 0);
  const weightElement = bytesPer(graph.initializer?.find((t) => (t.dims ?? []).length >= 2)?.dataType ?? 1);
  const element = o.activationBytes ?? weightElement;
  let activations = 0;
  let largest = 0;
  let unknown = 0;
  for (const node of topologicalOrder(graph)) {
    inferNode(node, env);
    if (ALIASES.has(node.opType ?? '') || node.opType === 'Shape' || node.opType === 'Constant') continue;
    for (const out of node.output ?? []) {
      const t = env.types.get(out);
      if (!t || !isFloatType(t.elemType)) continue;
      if (!t.dims || !t.dims.every((d) => typeof d === 'number')) {
        unknown++;
        continue;
      }
      const bytes = (t.dims as number[]).reduce((a, b) => a * b, 1) * element;
      activations += bytes;
      largest = Math.max(largest, bytes);
    }
  }
  const sites = findLoraSites(unet, o.targets ?? ATTENTION_TARGETS);
  const loraParams = sites.reduce((sum, s) => sum + o.rank * (s.inFeatures + s.outFeatures), 0);
  const loraBytes = 4 * 4 * loraParams;
  const transientBytes = 4 * largest;
  return {
    weightsBytes, activationsBytes: activations, transientBytes, loraBytes, totalBytes: weightsBytes + activations + transientBytes + loraBytes,
    largestTensorBytes: largest, loraParams, unknownValues: unknown,
  };
}

export interface DeviceLimits {
  /** Memory the backend can use in all (e.g. WASM's 4 GiB heap, or what the person says the GPU has). */
  memoryBytes?: number;
  /** The adapter's maxBufferSize / maxStorageBufferBindingSize (the smaller). */
  maxBufferBytes?: number;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/** Null when the plan fits; otherwise a message with the numbers and what to lower. */
export function trainingFitProblem(plan: TrainMemoryPlan, limits: DeviceLimits, what: string): string | null {
  const parts = `weights ${mib(plan.weightsBytes)} + activations ${mib(plan.activationsBytes)} + transient ${mib(plan.transientBytes)} + LoRA/AdamW ${mib(plan.loraBytes)}`;
  if (limits.memoryBytes !== undefined && plan.totalBytes > limits.memoryBytes) {
    return `training ${what} needs about ${mib(plan.totalBytes)} (${parts}); this backend has ${mib(limits.memoryBytes)}. Lower the resolution or the batch`;
  }
  if (limits.maxBufferBytes !== undefined && plan.largestTensorBytes > limits.maxBufferBytes) {
    return `training ${what} needs a ${mib(plan.largestTensorBytes)} activation buffer; the adapter allows ${mib(limits.maxBufferBytes)} per buffer. Lower the resolution or the batch`;
  }
  return null;
}

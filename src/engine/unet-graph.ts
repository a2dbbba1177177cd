// The UNet graph a session is created from, for the tensors η and δ touch (DESIGN decision 1: weights as graph inputs).
// How a batch that mixes θ_pos and θ_neg samples runs depends on which tensors differ:
//   'none'     nothing is touched: the export as it is, one call.
//   'stacked'  every touched tensor is a Linear/1×1-Conv site: [θ_pos; θ_neg] stacked per site and a per-sample
//              `weight_set` (src/onnx/passes/stack-weight-sets.ts), one call per step as ordinary CFG.
//   'grouped'  some touched tensor is not a site (3×3 convs, GroupNorm scales, biases of a dense η): one call per
//              weight set, each on a sub-batch. Gathering per-sample copies of every weight of the UNet (the stacked
//              route extended to all ops) would write the whole UNet again per sample and step; two sub-batch calls
//              cost the same FLOPs and no extra memory.
// Attention is computed in query chunks where its scores would be large at the size generated
// (src/onnx/passes/chunk-attention.ts): the graph is made per attention plan, so per latent size that needs one.
import { ortExecutionOrder, simulatePeakMemory, type PeakMemory } from '../onnx/execution-memory.ts';
import { chunkAttention, chunkPlanKey, planAttentionChunks, SCORE_CHUNK_BYTES, shapesAt, type AttentionPlan } from '../onnx/passes/chunk-attention.ts';
import { initializersToInputs } from '../onnx/passes/initializers-to-inputs.ts';
import { stackWeightSets } from '../onnx/passes/stack-weight-sets.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { bytesPer } from '../onnx/tensor.ts';
import type { TouchedTensor } from './offsets.ts';

export type WeightMode = 'none' | 'stacked' | 'grouped';

export function weightMode(touched: readonly TouchedTensor[]): WeightMode {
  if (touched.length === 0) return 'none';
  // The GPU writes θ_neg's half of a stacked input by a buffer copy, whose offsets are whole 4-byte words: a float16
  // tensor of an odd element count (none in SD1.5/SDXL) is fed as two separate inputs instead.
  const stackable = (t: TouchedTensor) => t.site && (t.type === 'float32' || t.length % 2 === 0);
  return touched.every(stackable) ? 'stacked' : 'grouped';
}

/**
 * The graph to create the UNet session from, for these touched tensors. `inputs` are further initializers to take as
 * graph inputs (on WebGPU every external weight: they are fed from the engine's own GPU buffers, never ORT's heap).
 */
export function unetGraphFor(model: ModelProto, touched: readonly TouchedTensor[], inputs: readonly string[] = [], attention?: UnetAttention): { model: ModelProto; mode: WeightMode } {
  const mode = weightMode(touched);
  const chunked = attention ? chunkAttention(model, attention.plan) : model;
  const names = [...new Set([...touched.map((t) => t.name), ...inputs])];
  if (names.length === 0) return { model: chunked, mode };
  const promoted = initializersToInputs(chunked, names).model;
  if (mode === 'none') return { model: promoted, mode };
  if (mode === 'stacked') return { model: stackWeightSets(promoted, touched.map((t) => t.site!)), mode };
  return { model: promoted, mode };
}

/**
 * The most samples one UNet call takes: two images (baseline and NPO), each a CFG pair. Attention is planned for it;
 * a call of fewer samples has smaller chunks.
 */
export const MAX_CALL_BATCH = 4;

/** The UNet's attention plan at one input size, and its activations there (the fit check's numbers). */
export interface UnetAttention {
  plan: AttentionPlan;
  /** Equal keys: the same graph. */
  key: string;
  /** Peak of the intermediate values alive at once in ORT's order, and the largest one (src/onnx/execution-memory.ts). */
  activations: PeakMemory;
}

/**
 * The attention plan and activation peak of `model` at these input dims (the inputs a call is fed, at
 * MAX_CALL_BATCH samples), each attention's scores in chunks of at most `budgetBytes` (Infinity: none chunked).
 * Values whose size inference cannot tell are left out of the peak: in the SD1.5 export 41 small ones (the time
 * embedding's vectors, whose batch comes from an Expand of the timestep, as in the training plan).
 */
export function unetAttentionAt(model: ModelProto, dims: Readonly<Record<string, readonly number[]>>, budgetBytes = SCORE_CHUNK_BYTES): UnetAttention {
  const plan = planAttentionChunks(model, dims, budgetBytes);
  const graph = chunkAttention(model, plan).graph!;
  const env = shapesAt(graph, dims);
  const stored = new Set([...(graph.initializer ?? []).map((t) => t.name), ...(graph.input ?? []).map((v) => v.name)]);
  const bytesOf = (value: string) => {
    const t = env.types.get(value);
    if (stored.has(value) || !t?.dims?.every((d) => typeof d === 'number')) return null;
    return (t.dims as number[]).reduce((a, b) => a * b, 1) * bytesPer(t.elemType ?? 1);
  };
  const activations = simulatePeakMemory(ortExecutionOrder(graph.node ?? []), (graph.output ?? []).map((v) => v.name ?? ''), bytesOf);
  return { plan, key: chunkPlanKey(plan), activations };
}

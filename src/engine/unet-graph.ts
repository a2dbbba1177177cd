// The UNet graph a session is created from, for the tensors η and δ touch (DESIGN decision 1: weights as graph inputs).
// How a batch that mixes θ_pos and θ_neg samples runs depends on which tensors differ:
//   'none'     nothing is touched: the export as it is, one call.
//   'stacked'  every touched tensor is a Linear/1×1-Conv site: [θ_pos; θ_neg] stacked per site and a per-sample
//              `weight_set` (src/onnx/passes/stack-weight-sets.ts), one call per step as ordinary CFG.
//   'grouped'  some touched tensor is not a site (3×3 convs, GroupNorm scales, biases of a dense η): one call per
//              weight set, each on a sub-batch. Gathering per-sample copies of every weight of the UNet (the stacked
//              route extended to all ops) would write the whole UNet again per sample and step; two sub-batch calls
//              cost the same FLOPs and no extra memory.
import { initializersToInputs } from '../onnx/passes/initializers-to-inputs.ts';
import { stackWeightSets } from '../onnx/passes/stack-weight-sets.ts';
import type { ModelProto } from '../onnx/proto.ts';
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
export function unetGraphFor(model: ModelProto, touched: readonly TouchedTensor[], inputs: readonly string[] = []): { model: ModelProto; mode: WeightMode } {
  const mode = weightMode(touched);
  const names = [...new Set([...touched.map((t) => t.name), ...inputs])];
  if (names.length === 0) return { model, mode };
  const promoted = initializersToInputs(model, names).model;
  if (mode === 'none') return { model: promoted, mode };
  if (mode === 'stacked') return { model: stackWeightSets(promoted, touched.map((t) => t.site!)), mode };
  return { model: promoted, mode };
}

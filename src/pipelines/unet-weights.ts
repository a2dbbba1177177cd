// θ_pos and θ_neg for a real UNet export (paper Eq. 10: θ_pos = θ + η, θ_neg = θ + α·η + β·δ), where η may be dense
// (DPO-SD1.5 is a full fine-tune: every tensor of the UNet differs) and η, δ may be LoRAs on any Linear or 1×1 Conv.
// Only the tensors an offset touches become graph inputs (DESIGN decision 1); the rest stay initializers.
//
// How a batch that mixes θ_pos and θ_neg samples is run depends on which tensors differ:
//   'none'     nothing is touched: the export as it is, one call.
//   'stacked'  every touched tensor is a Linear/1×1-Conv site: [θ_pos; θ_neg] stacked per site and a per-sample
//              `weight_set` (src/onnx/passes/stack-weight-sets.ts), one call per step as ordinary CFG.
//   'grouped'  some touched tensor is not a site (3×3 convs, GroupNorm scales, biases of a dense η): one call per
//              weight set, each on a sub-batch. Gathering per-sample copies of every weight of the UNet (the stacked
//              route extended to all ops) would write the whole UNet again per sample and step; two sub-batch calls
//              cost the same FLOPs and no extra memory.
// Memory: θ_pos = θ + η is merged once and θ itself is not kept: θ_neg = θ_pos + (α − 1)·η + β·δ (bench:sd15 case c1,
// 3× the UNet for a dense η). θ_neg shares θ_pos's array for every tensor where (α − 1)·η + β·δ vanishes (α = 1 and no
// δ there), so NPO with α = 1 and a LoRA δ duplicates only the δ sites.
// On WebGPU each array lives in a GPU buffer fed with Tensor.fromGpuBuffer, written once after each (re)merge: the
// weights do not travel to the GPU again on every call.
import type * as OrtCommon from 'onnxruntime-common';
import type { LoraSite } from '../onnx/lora-sites.ts';
import { createWeightBuffer } from '../gpu/buffers.ts';
import { floatInput, toHalf, type FloatType } from './float-tensors.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { initializersToInputs } from '../onnx/passes/initializers-to-inputs.ts';
import { stackWeightSets } from '../onnx/passes/stack-weight-sets.ts';
import { negativeId, parseNegativeId, planBatch, POSITIVE } from '../worker/weight-set-ids.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;
type Feeds = Record<string, OrtCommon.Tensor>;

/** One UNet tensor that η or δ touches, with its base values θ and dense offsets (in the initializer's layout). */
export interface TouchedTensor {
  name: string;
  dims: number[];
  base: Float32Array;
  eta?: Float32Array;
  delta?: Float32Array;
  /** Set when the tensor is a Linear/1×1-Conv weight the stacking pass can rewrite. */
  site?: LoraSite;
  /** The graph's element type for it; values are float32 here and converted when fed (float-tensors.ts). */
  type?: FloatType;
}

export type WeightMode = 'none' | 'stacked' | 'grouped';

/** The graph to create the UNet session from, for these touched tensors. */
export function unetGraphFor(model: ModelProto, touched: readonly TouchedTensor[]): { model: ModelProto; mode: WeightMode } {
  if (touched.length === 0) return { model, mode: 'none' };
  const promoted = initializersToInputs(model, touched.map((t) => t.name)).model;
  if (touched.every((t) => t.site)) return { model: stackWeightSets(promoted, touched.map((t) => t.site!)), mode: 'stacked' };
  return { model: promoted, mode: 'grouped' };
}

/** One UNet call: the samples (indices into the batch) it serves and the weight feeds it needs. */
export interface WeightCall { samples: number[]; feeds: Feeds }

export interface WeightFeeder {
  mode: WeightMode;
  /** The calls that serve a batch whose samples name their weight sets (POSITIVE or negativeId(α, β)). */
  callsFor(ids: readonly string[]): WeightCall[];
  /** Bytes of weight values held for the two sets (what NPO costs in memory beyond the export's own weights). */
  residentBytes(): number;
}

/** Where weight arrays live when fed: CPU tensors, or GPU buffers rewritten only when their array was re-merged. */
export interface WeightResidency {
  tensor(values: Float32Array, dims: number[], changed: boolean, type?: FloatType): OrtCommon.Tensor;
  release(): void;
}

/** CPU tensors; float16 weights are converted once per (re)merge and the half copy kept. */
export function cpuResidency(ort: Ort): WeightResidency {
  const halves = new WeakMap<Float32Array, OrtCommon.Tensor>();
  return {
    tensor(values, dims, changed, type = 'float32') {
      if (type === 'float32') return new ort.Tensor('float32', values, dims);
      let tensor = halves.get(values);
      if (!tensor || changed) halves.set(values, (tensor = floatInput(ort, type, values, dims)));
      return tensor;
    },
    release: () => undefined,
  };
}

export function gpuResidency(ort: Pick<typeof OrtCommon, 'Tensor'>, device: GPUDevice): WeightResidency {
  const resident = new Map<Float32Array, { buffer: GPUBuffer; tensor: OrtCommon.Tensor }>();
  return {
    tensor(values, dims, changed, type = 'float32') {
      let entry = resident.get(values);
      const data = type === 'float16' ? toHalf(values) : values;
      if (!entry) {
        // Each weight set is its own buffer (no buffer grows with the model); ORT binds it whole, so it must fit the
        // binding limit too. src/model/fit.ts says so before loading; this names the tensor if it still happens.
        if (data.byteLength > device.limits.maxStorageBufferBindingSize) {
          throw new Error(`weight set [${dims.join(', ')}] is ${data.byteLength} bytes, over maxStorageBufferBindingSize (${device.limits.maxStorageBufferBindingSize})`);
        }
        const buffer = createWeightBuffer(device, data.byteLength, { label: 'unet weight set', data });
        entry = { buffer, tensor: ort.Tensor.fromGpuBuffer(buffer, { dataType: type, dims }) };
        resident.set(values, entry);
      } else if (changed) {
        device.queue.writeBuffer(entry.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
      }
      return entry.tensor;
    },
    release() {
      for (const { buffer } of resident.values()) buffer.destroy();
      resident.clear();
    },
  };
}

export function createWeightFeeder(ort: Ort, touched: readonly TouchedTensor[], mode: WeightMode, residency = cpuResidency(ort)): WeightFeeder & { release(): void } {
  const all = (ids: readonly string[]) => ids.map((_, i) => i);
  const release = () => residency.release();
  if (mode === 'none') return { mode, release, callsFor: (ids) => [{ samples: all(ids), feeds: {} }], residentBytes: () => 0 };
  const sets = createSets(touched, mode === 'stacked');
  // θ is folded into θ_pos now; nothing below may read t.base (the caller drops its references to let it go).
  const shapes = touched.map(({ name, dims, site, type }) => ({ name, dims, type, weightName: site?.weightName }));
  const feed = (values: Float32Array, dims: number[], type?: FloatType) => residency.tensor(values, dims, sets.takeChanged(values), type);
  if (mode === 'stacked') {
    return {
      mode,
      release,
      residentBytes: sets.residentBytes,
      callsFor(ids) {
        const plan = planBatch(ids);
        if (plan.negative) sets.mergeNegative(plan.negative);
        const feeds: Feeds = Object.fromEntries(shapes.map((t, i) => [t.weightName!, feed(sets.stacked[i], [2, ...t.dims], t.type)]));
        return [{ samples: all(ids), feeds: { ...feeds, [plan.input]: new ort.Tensor('int64', plan.sets, [ids.length]) } }];
      },
    };
  }
  return {
    mode,
    release,
    residentBytes: sets.residentBytes,
    callsFor(ids) {
      const groups = new Map<string, number[]>();
      ids.forEach((id, i) => groups.set(id, [...(groups.get(id) ?? []), i]));
      return [...groups].map(([id, samples]) => {
        const arrays = id === POSITIVE ? sets.positive : sets.mergeNegative(id);
        return { samples, feeds: Object.fromEntries(shapes.map((t, i) => [t.name, feed(arrays[i], t.dims, t.type)])) };
      });
    },
  };
}

/**
 * θ_pos merged once, θ_neg re-merged when another (α, β) is asked for. Stacked: both live in one [2, …] array per
 * tensor (the graph input). Grouped: θ_neg aliases θ_pos wherever the offsets leave that tensor unchanged.
 */
function createSets(touched: readonly TouchedTensor[], stacked: boolean) {
  const sizes = touched.map((t) => t.base.length);
  const offsets = touched.map(({ eta, delta }) => ({ eta, delta }));
  const stackedArrays = stacked ? sizes.map((n) => new Float32Array(2 * n)) : [];
  const positive = sizes.map((n, i) => (stacked ? stackedArrays[i].subarray(0, n) : new Float32Array(n)));
  touched.forEach((t, i) => mergeInto(positive[i], t.base, t.eta, 1, undefined, 0));
  const negative = sizes.map((n, i) => (stacked ? stackedArrays[i].subarray(n) : positive[i]));
  let current: string | undefined = stacked ? undefined : negativeId(1, 0);
  /** Arrays re-merged since they were last fed (a GPU copy must be rewritten). */
  const changed = new Set<Float32Array>();
  return {
    stacked: stackedArrays,
    positive,
    takeChanged: (values: Float32Array) => changed.delete(values),
    mergeNegative(id: string): Float32Array[] {
      if (id === current) return negative;
      const { alpha, beta } = parseNegativeId(id);
      current = undefined; // a failed merge must not leave a stale id
      offsets.forEach(({ eta, delta }, i) => {
        const differs = (eta && alpha !== 1) || (delta && beta !== 0);
        if (stacked) mergeInto(negative[i], positive[i], eta, alpha - 1, delta, beta);
        else if (!differs) negative[i] = positive[i];
        else mergeInto(negative[i] === positive[i] ? (negative[i] = new Float32Array(sizes[i])) : negative[i], positive[i], eta, alpha - 1, delta, beta);
        changed.add(stacked ? stackedArrays[i] : negative[i]);
      });
      current = id;
      return negative;
    },
    residentBytes: () => {
      const arrays = new Set([...positive.map((a) => a.buffer), ...negative.map((a) => a.buffer)]);
      return [...arrays].reduce((sum, b) => sum + b.byteLength, 0);
    },
  };
}

/** out = from + a·η + b·δ, element by element (in float64 per element, rounded once): θ_pos = θ + η, θ_neg = θ_pos + (α − 1)·η + β·δ. */
function mergeInto(out: Float32Array, from: Float32Array, eta: Float32Array | undefined, a: number, delta: Float32Array | undefined, b: number) {
  for (let i = 0; i < from.length; i++) out[i] = from[i] + (eta ? a * eta[i] : 0) + (delta ? b * delta[i] : 0);
}

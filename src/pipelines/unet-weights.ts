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
// Memory (issue 16: resident at the minimum): θ is never copied. Untouched weights stay the export's initializers (ORT
// reads them from the file bytes); a touched tensor's θ is a view of the file bytes in the model's dtype. Only the
// touched tensors get arrays of their own, in the model's dtype (float16 stays float16): stacked, one [θ_pos; θ_neg]
// input per site; grouped, θ_pos where η touches the tensor (θ's view otherwise) and θ_neg where (α − 1)·η + β·δ
// does not vanish (θ_pos's array otherwise). Each tensor is merged on its own in float64 per element from θ and its
// offsets, a LoRA's ΔW made for that tensor only and dropped after it: beyond the files, the worker holds
// 2 × touched × element bytes (fit.ts npoBytes) plus one tensor's float32 scratch.
// On WebGPU each array lives in a GPU buffer fed with Tensor.fromGpuBuffer, written once after each (re)merge: the
// weights do not travel to the GPU again on every call.
import type * as OrtCommon from 'onnxruntime-common';
import type { LoraSite } from '../onnx/lora-sites.ts';
import { createWeightBuffer, writeWeightBuffer } from '../gpu/buffers.ts';
import type { FloatType } from './float-tensors.ts';
import { floatToHalf, halfToFloat } from '../lora/float16.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { initializersToInputs } from '../onnx/passes/initializers-to-inputs.ts';
import { stackWeightSets } from '../onnx/passes/stack-weight-sets.ts';
import { negativeId, parseNegativeId, planBatch, POSITIVE } from '../worker/weight-set-ids.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;
type Feeds = Record<string, OrtCommon.Tensor>;

/** Weight values in the graph's element type: float32, or float16 as IEEE half bits. */
export type WeightValues = Float32Array | Uint16Array;

/** An offset's values for one tensor: dense (held), or made when the tensor is merged (a LoRA's Σ sᵢ·ΔWᵢ) and dropped. */
export type OffsetValues = Float32Array | (() => Float32Array);

/** One UNet tensor that η or δ touches, with its base values θ and its offsets (in the initializer's layout). */
export interface TouchedTensor {
  name: string;
  dims: number[];
  /** θ as the file stores it (a view of its bytes where aligned, never modified), in the element type `type`. */
  base: WeightValues;
  eta?: OffsetValues;
  delta?: OffsetValues;
  /** Set when the tensor is a Linear/1×1-Conv weight the stacking pass can rewrite. */
  site?: LoraSite;
  /** The graph's element type for it (float32 when absent); base and the merged sets are in it. */
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
  tensor(values: WeightValues, dims: number[], changed: boolean, type?: FloatType): OrtCommon.Tensor;
  release(): void;
}

/** CPU tensors over the arrays themselves (already in the graph's element type: nothing converted or kept). */
export function cpuResidency(ort: Ort): WeightResidency {
  return {
    tensor: (values, dims, _changed, type = 'float32') => new ort.Tensor(type, values, dims),
    release: () => undefined,
  };
}

export function gpuResidency(ort: Pick<typeof OrtCommon, 'Tensor'>, device: GPUDevice): WeightResidency {
  const resident = new Map<WeightValues, { buffer: GPUBuffer; tensor: OrtCommon.Tensor }>();
  return {
    tensor(data, dims, changed, type = 'float32') {
      let entry = resident.get(data);
      if (!entry) {
        // Each weight set is its own buffer (no buffer grows with the model); ORT binds it whole, so it must fit the
        // binding limit too. src/model/fit.ts says so before loading; this names the tensor if it still happens.
        if (data.byteLength > device.limits.maxStorageBufferBindingSize) {
          throw new Error(`weight set [${dims.join(', ')}] is ${data.byteLength} bytes, over maxStorageBufferBindingSize (${device.limits.maxStorageBufferBindingSize})`);
        }
        const buffer = createWeightBuffer(device, data.byteLength, { label: 'unet weight set', data });
        entry = { buffer, tensor: ort.Tensor.fromGpuBuffer(buffer, { dataType: type, dims }) };
        resident.set(data, entry);
      } else if (changed) {
        writeWeightBuffer(device, entry.buffer, data);
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
  const shapes = touched.map(({ name, dims, site, type }) => ({ name, dims, type, weightName: site?.weightName }));
  const feed = (values: WeightValues, dims: number[], type?: FloatType) => residency.tensor(values, dims, sets.takeChanged(values), type);
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
 * θ_pos merged once, θ_neg re-merged when another (α, β) is asked for, both from θ (the file's values). Stacked: both
 * live in one [2, …] array per tensor (the graph input). Grouped: θ_pos is θ's view where η leaves the tensor alone,
 * θ_neg is θ_pos's array wherever the offsets leave that tensor unchanged.
 */
function createSets(touched: readonly TouchedTensor[], stacked: boolean) {
  const alloc = (t: TouchedTensor, n: number): WeightValues => (t.type === 'float16' ? new Uint16Array(n) : new Float32Array(n));
  const stackedArrays = stacked ? touched.map((t) => alloc(t, 2 * t.base.length)) : [];
  const positive = touched.map((t, i) => (stacked ? stackedArrays[i].subarray(0, t.base.length) : t.eta ? alloc(t, t.base.length) : t.base));
  touched.forEach((t, i) => positive[i] !== t.base && mergeInto(positive[i], t, 1, 0));
  const negative = touched.map((t, i) => (stacked ? stackedArrays[i].subarray(t.base.length) : positive[i]));
  let current: string | undefined = stacked ? undefined : negativeId(1, 0);
  /** Arrays re-merged since they were last fed (a GPU copy must be rewritten). */
  const changed = new Set<WeightValues>();
  return {
    stacked: stackedArrays,
    positive,
    takeChanged: (values: WeightValues) => changed.delete(values),
    mergeNegative(id: string): WeightValues[] {
      if (id === current) return negative;
      const { alpha, beta } = parseNegativeId(id);
      current = undefined; // a failed merge must not leave a stale id
      touched.forEach((t, i) => {
        const differs = (t.eta && alpha !== 1) || (t.delta && beta !== 0);
        if (!stacked && !differs) negative[i] = positive[i];
        else {
          if (!stacked && negative[i] === positive[i]) negative[i] = alloc(t, t.base.length);
          mergeInto(negative[i], t, alpha, beta);
        }
        changed.add(stacked ? stackedArrays[i] : negative[i]);
      });
      current = id;
      return negative;
    },
    /** Bytes of the arrays the sets own (θ's views of the file bytes are the files' own). */
    residentBytes: () => {
      const views = new Set(touched.map((t) => t.base.buffer));
      const owned = new Set([...stackedArrays, ...positive, ...negative].map((a) => a.buffer).filter((b) => !views.has(b)));
      return [...owned].reduce((sum, b) => sum + b.byteLength, 0);
    },
  };
}

const offsetValues = (values: OffsetValues | undefined) => (typeof values === 'function' ? values() : values);

/**
 * out = θ + a·η + b·δ for one tensor, element by element in float64, rounded once to out's element type:
 * θ_pos = θ + η (a = 1, b = 0), θ_neg = θ + α·η + β·δ (paper Eq. 10). A LoRA's ΔW is made here and dropped after.
 */
function mergeInto(out: WeightValues, t: TouchedTensor, a: number, b: number) {
  const eta = a !== 0 ? offsetValues(t.eta) : undefined;
  const delta = b !== 0 ? offsetValues(t.delta) : undefined;
  const half = t.type === 'float16';
  const base = t.base;
  for (let i = 0; i < base.length; i++) {
    const v = (half ? halfToFloat(base[i]) : base[i]) + (eta ? a * eta[i] : 0) + (delta ? b * delta[i] : 0);
    out[i] = half ? floatToHalf(v) : v;
  }
}

// θ_pos and θ_neg on the CPU (the WASM backend and onnxruntime-node): paper Eq. 10, θ_pos = θ + η merged once and
// θ_neg = θ + α·η + β·δ re-merged when another (α, β) is asked for, both from θ as the file stores it, element by
// element in float64, rounded once to the graph's element type (float16 stays float16). ORT takes the arrays as CPU
// tensors. Stacked mode: one [θ_pos; θ_neg] array per touched tensor (the stacked graph input). Grouped: θ_pos is θ's
// own view where η leaves a tensor alone, θ_neg θ_pos's array wherever the offsets leave that tensor unchanged.
// Beyond the files, the worker holds 2 × touched × element bytes (fit.ts npoWorkerArrays) plus one tensor's float32
// scratch while it is merged.
import type * as OrtCommon from 'onnxruntime-common';
import { floatToHalf, halfToFloat } from '../lora/float16.ts';
import { negativeId, parseNegativeId, planBatch, POSITIVE } from '../worker/weight-set-ids.ts';
import { offsetValues, type TouchedTensor, type WeightValues } from './offsets.ts';
import type { Feeds } from './family.ts';
import type { WeightMode } from './unet-graph.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;

/** One UNet call: the samples (indices into the batch) it serves and the weight feeds it needs. */
export interface WeightCall { samples: number[]; feeds: Feeds }

/** What the last θ_neg merge did, on either backend. */
export interface MergeStats {
  merges: number;
  /** Bytes the last merge read and wrote (θ_pos read, θ_neg written, factors or dense offsets read). */
  bytes: number;
  /** Wall time of the last merge (on the GPU, from encode to the queue reporting it done). */
  milliseconds: number;
  /** Tensors the last merge wrote (those whose coefficients changed). */
  tensors: number;
}

/** The weight sets of one UNet session, on the CPU (this file) or the GPU (weights-gpu.ts). */
export interface UnetWeights {
  mode: WeightMode;
  /** The calls that serve a batch whose samples name their weight sets (POSITIVE or negativeId(α, β)). */
  callsFor(ids: readonly string[], signal?: AbortSignal): Promise<WeightCall[]>;
  /** Bytes of weight values held for the two sets (what NPO costs beyond the export's own weights). */
  residentBytes(): number;
  /** The merges of θ_neg so far and what the last one did. */
  stats(): MergeStats;
  release(): void;
}

/** Groups a batch's samples by weight set, in order of first appearance. */
export function groupByWeightSet(ids: readonly string[]): Map<string, number[]> {
  const groups = new Map<string, number[]>();
  ids.forEach((id, i) => groups.set(id, [...(groups.get(id) ?? []), i]));
  return groups;
}

/** A touched tensor with θ in memory (touchedTensors given the external files). */
type CpuTensor = TouchedTensor & { base: WeightValues };

export function createCpuWeights(ort: Ort, tensors: readonly TouchedTensor[], mode: WeightMode): UnetWeights {
  const all = (ids: readonly string[]) => ids.map((_, i) => i);
  if (mode === 'none') return { mode, release: () => undefined, callsFor: async (ids) => [{ samples: all(ids), feeds: {} }], residentBytes: () => 0, stats: () => ({ merges: 0, bytes: 0, milliseconds: 0, tensors: 0 }) };
  const touched = tensors.map((t) => {
    if (!t.base) throw new Error(`CPU weights: θ of ${t.name} was not read`);
    return t as CpuTensor;
  });
  const sets = createSets(touched, mode === 'stacked');
  const tensor = (values: WeightValues, dims: number[], type: string) => new ort.Tensor(type as 'float32', values, dims);
  return {
    mode,
    release: () => undefined,
    residentBytes: sets.residentBytes,
    stats: () => ({ ...sets.stats }),
    async callsFor(ids) {
      if (mode === 'stacked') {
        const plan = planBatch(ids);
        if (plan.negative) sets.mergeNegative(plan.negative);
        const feeds: Feeds = Object.fromEntries(touched.map((t, i) => [t.site!.weightName, tensor(sets.stacked[i], [2, ...t.dims], t.type)]));
        return [{ samples: all(ids), feeds: { ...feeds, [plan.input]: new ort.Tensor('int64', plan.sets, [ids.length]) } }];
      }
      return [...groupByWeightSet(ids)].map(([id, samples]) => {
        const arrays = id === POSITIVE ? sets.positive : sets.mergeNegative(id);
        return { samples, feeds: Object.fromEntries(touched.map((t, i) => [t.name, tensor(arrays[i], t.dims, t.type)])) };
      });
    },
  };
}

function createSets(touched: readonly CpuTensor[], stacked: boolean) {
  const alloc = (t: CpuTensor, n: number): WeightValues => (t.type === 'float16' ? new Uint16Array(n) : new Float32Array(n));
  const stackedArrays = stacked ? touched.map((t) => alloc(t, 2 * t.base.length)) : [];
  const positive = touched.map((t, i) => (stacked ? stackedArrays[i].subarray(0, t.base.length) : t.eta ? alloc(t, t.base.length) : t.base));
  touched.forEach((t, i) => positive[i] !== t.base && mergeInto(positive[i], t, 1, 0));
  const negative = touched.map((t, i) => (stacked ? stackedArrays[i].subarray(t.base.length) : positive[i]));
  let current: string | undefined = stacked ? undefined : negativeId(1, 0);
  const stats: MergeStats = { merges: 0, bytes: 0, milliseconds: 0, tensors: 0 };
  return {
    stats,
    stacked: stackedArrays,
    positive,
    mergeNegative(id: string): WeightValues[] {
      if (id === current) return negative;
      const { alpha, beta } = parseNegativeId(id);
      current = undefined; // a failed merge must not leave a stale id
      const started = performance.now();
      let [bytes, tensors] = [0, 0];
      touched.forEach((t, i) => {
        const differs = (t.eta && alpha !== 1) || (t.delta && beta !== 0);
        if (!stacked && !differs) negative[i] = positive[i];
        else {
          if (!stacked && negative[i] === positive[i]) negative[i] = alloc(t, t.base.length);
          bytes += mergeInto(negative[i], t, alpha, beta);
          tensors++;
        }
      });
      Object.assign(stats, { merges: stats.merges + 1, bytes, milliseconds: performance.now() - started, tensors });
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

/**
 * out = θ + a·η + b·δ for one tensor, element by element in float64, rounded once to out's element type:
 * θ_pos = θ + η (a = 1, b = 0), θ_neg = θ + α·η + β·δ (paper Eq. 10). A LoRA's ΔW is made here and dropped after.
 * Returns the bytes read and written (θ and out, and each offset's values as float32).
 */
function mergeInto(out: WeightValues, t: CpuTensor, a: number, b: number): number {
  const eta = a !== 0 && t.eta ? offsetValues(t.eta) : undefined;
  const delta = b !== 0 && t.delta ? offsetValues(t.delta) : undefined;
  const half = t.type === 'float16';
  const base = t.base;
  for (let i = 0; i < base.length; i++) {
    const v = (half ? halfToFloat(base[i]) : base[i]) + (eta ? a * eta[i] : 0) + (delta ? b * delta[i] : 0);
    out[i] = half ? floatToHalf(v) : v;
  }
  return base.byteLength + out.byteLength + (eta ? 4 * eta.length : 0) + (delta ? 4 * delta.length : 0);
}

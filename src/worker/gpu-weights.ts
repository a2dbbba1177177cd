// θ_pos and θ_neg on the device ORT runs on (DESIGN decision 1, issue 6 item 2), stacked per LoRA site in one
// [2, ...W.dims] buffer as the UNet's stacked inputs expect (src/onnx/passes/stack-weight-sets.ts). Base θ and the
// factors of η and δ (LoRA down/up, or a dense η such as a full DPO fine-tune's θ_dpo − θ) are uploaded once and stay
// resident; the merge kernels (src/gpu/merge.ts) write θ_pos = θ + η into the first half once and θ_neg = θ + α·η + β·δ
// into the second half whenever (α, β) change; moving ω re-merges nothing. ORT receives the buffers with
// Tensor.fromGpuBuffer: no copies.
import type * as OrtCommon from 'onnxruntime-common';
import { createMergeKernels, type MergeJob, type MergeTerm, type WeightLayout } from '../gpu/merge.ts';
import type { BufferTracker } from '../gpu/tracker.ts';
import { parseNegativeId, planBatch } from './weight-set-ids.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;
type Feeds = Record<string, OrtCommon.Tensor>;

/** An offset as it arrives from a file: LoRA factors (diffusers orientation: down [rank, in], up [out, rank]) or dense. */
export type OffsetSource =
  | { kind: 'lora'; down: Float32Array; up: Float32Array; rank: number; scale: number }
  | { kind: 'dense'; delta: Float32Array };

export interface GpuSite {
  weightName: string;
  dims: number[];
  inFeatures: number;
  outFeatures: number;
  layout: WeightLayout;
  base: Float32Array;
  eta?: OffsetSource;
  delta?: OffsetSource;
}

export interface MergeStats {
  merges: number;
  /** Bytes the last merge read and wrote (θ read, θ' written, factors read). */
  bytes: number;
  /** Wall time of the last merge, from encode to the queue reporting it done. */
  milliseconds: number;
}

export interface GpuWeightSets {
  /** Feeds for a batch whose samples use weight sets `ids` (weight-set-ids.ts); merges θ_neg first when its (α, β) changed. */
  feeds(ids: string[]): Promise<Feeds>;
  /** Replaces η or δ (one source per site, in site order; undefined: none). The old buffers are destroyed. */
  replace(role: 'eta' | 'delta', sources: (OffsetSource | undefined)[]): void;
  stats(): MergeStats;
  destroy(): void;
}

type Resident = { kind: 'lora'; down: GPUBuffer; up: GPUBuffer; rank: number; scale: number; bytes: number } | { kind: 'dense'; delta: GPUBuffer; bytes: number };

const OWNER = 'weights';

export function createGpuWeightSets(ort: Ort, device: GPUDevice, tracker: BufferTracker, sites: GpuSite[]): GpuWeightSets {
  const kernels = createMergeKernels(device);
  const upload = (data: Float32Array, label: string) => tracker.create(OWNER, data.byteLength, { data, label });
  const resident = (source: OffsetSource | undefined, label: string): Resident | undefined => {
    if (!source) return undefined;
    if (source.kind === 'dense') return { kind: 'dense', delta: upload(source.delta, `${label} dense`), bytes: source.delta.byteLength };
    return { kind: 'lora', down: upload(source.down, `${label} down`), up: upload(source.up, `${label} up`), rank: source.rank, scale: source.scale, bytes: source.down.byteLength + source.up.byteLength };
  };
  const layers = sites.map((site) => ({
    site,
    base: upload(site.base, `θ ${site.weightName}`),
    eta: resident(site.eta, `η ${site.weightName}`),
    delta: resident(site.delta, `δ ${site.weightName}`),
    stacked: tracker.create(OWNER, 2 * site.base.byteLength, { label: `[θ_pos; θ_neg] ${site.weightName}` }),
  }));
  const weightTensors: Feeds = Object.fromEntries(layers.map((l) =>
    [l.site.weightName, ort.Tensor.fromGpuBuffer(l.stacked, { dataType: 'float32', dims: [2, ...l.site.dims] })]));
  const stats: MergeStats = { merges: 0, bytes: 0, milliseconds: 0 };

  const term = (r: Resident | undefined, coefficient: number): MergeTerm[] => {
    if (!r || coefficient === 0) return [];
    return r.kind === 'dense' ? [{ kind: 'dense', delta: r.delta, scale: coefficient }] : [{ kind: 'lora', down: r.down, up: r.up, rank: r.rank, scale: coefficient * r.scale }];
  };
  async function merge(set: 0 | 1, alpha: number, beta: number) {
    const started = performance.now();
    const jobs: MergeJob[] = layers.map((l) => ({
      base: l.base, out: l.stacked, outOffset: set * l.site.base.length, inFeatures: l.site.inFeatures, outFeatures: l.site.outFeatures, layout: l.site.layout,
      terms: [...term(l.eta, alpha), ...term(l.delta, beta)],
    }));
    kernels.merge(jobs);
    await device.queue.onSubmittedWorkDone();
    stats.merges++;
    stats.milliseconds = performance.now() - started;
    stats.bytes = layers.reduce((sum, l, i) => sum + 2 * l.site.base.byteLength + jobs[i].terms.reduce((s, t) => s + (t.kind === 'lora' ? (l.site.inFeatures + l.site.outFeatures) * t.rank * 4 : l.site.base.byteLength), 0), 0);
  }

  let positive: Promise<unknown> | undefined;
  let negative: string | undefined;
  const free = (r: Resident | undefined) => {
    if (r?.kind === 'lora') [r.down, r.up].forEach((b) => tracker.destroy(b));
    else if (r) tracker.destroy(r.delta);
  };
  return {
    async feeds(ids) {
      const plan = planBatch(ids);
      positive ??= merge(0, 1, 0).catch((error) => { positive = undefined; throw error; });
      await positive;
      if (plan.negative && negative !== plan.negative) {
        const { alpha, beta } = parseNegativeId(plan.negative);
        negative = undefined; // a failed merge must not leave a stale id
        await merge(1, alpha, beta);
        negative = plan.negative;
      }
      return { ...weightTensors, [plan.input]: new ort.Tensor('int64', plan.sets, [ids.length]) };
    },
    replace(role, sources) {
      if (sources.length !== layers.length) throw new Error(`replace ${role}: ${sources.length} sources for ${layers.length} sites`);
      layers.forEach((l, i) => {
        free(l[role]);
        l[role] = resident(sources[i], `${role === 'eta' ? 'η' : 'δ'} ${l.site.weightName}`);
      });
      if (role === 'eta') positive = undefined;
      negative = undefined;
    },
    stats: () => ({ ...stats }),
    destroy() {
      kernels.destroy();
      tracker.destroyOwner(OWNER);
    },
  };
}

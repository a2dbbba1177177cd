// θ_pos and θ_neg on the GPU (DESIGN decisions 1 and 7): paper Eq. 10 written by our WGSL merge kernels
// (src/gpu/merge.ts) on the device ORT runs on, and handed to ORT as graph inputs with Tensor.fromGpuBuffer.
//   load      θ comes as GPU buffers streamed from the model's files (GpuTensors; nothing of it in JS); θ_pos = θ + η is
//             merged over θ in place. θ itself is not kept: θ_neg = θ + α·η + β·δ is merged from θ_pos as
//             θ_pos + (α − 1)·η + β·δ. Replacing η streams θ again.
//   offsets   η and δ stay resident as they came: LoRA factors (down, up, scale per term) or a dense tensor in its own
//             element type, streamed from its file. No dense ΔW of a LoRA ever exists.
//   α, β      a move re-merges θ_neg only for the tensors whose coefficients (α − 1 where η touches, β where δ does)
//             changed; nothing is uploaded but the kernels' parameters. Moving ω or the prompt re-merges nothing.
//   stacked   one [θ_pos; θ_neg] buffer per site (the stacked graph input); θ_neg's half is merged from a copy of
//             θ_pos's half (WebGPU binds a buffer either read-only or writable in one dispatch, not both).
//   grouped   θ_pos and θ_neg are separate buffers; θ_neg exists only for tensors where it differs from θ_pos.
// A merge is cut into batches of about MERGE_BATCH_BYTES written; a cancelled generation stops between batches, and
// the tensors not merged yet are merged by the next one. Replacing η re-reads θ (from the model's files).
import type * as OrtCommon from 'onnxruntime-common';
import { createMergeKernels, type MergeShape, type MergeTerm } from '../gpu/merge.ts';
import type { BufferTracker } from '../gpu/tracker.ts';
import type { ElementType } from '../gpu/element-type.ts';
import { abortError } from '../diffusion/sampler.ts';
import { parseNegativeId, planBatch, POSITIVE } from '../worker/weight-set-ids.ts';
import type { LoraRole } from '../worker/protocol.ts';
import { roleName, type DenseTensor, type TensorOffset, type TouchedTensor } from './offsets.ts';
import type { WeightMode } from './unet-graph.ts';
import type { Feeds } from './family.ts';
import { groupByWeightSet, type MergeStats, type UnetWeights, type WeightCall } from './weights-cpu.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;

export interface GpuWeights extends UnetWeights {
  /** Replaces η or δ with the offsets of `touched` (the same tensors, in the same order: a different set needs a new session). */
  replace(role: LoraRole, touched: readonly TouchedTensor[]): Promise<void>;
}

/** Where the weights get their GPU tensors from (the engine streams them from the model's files; tests upload arrays). */
export interface GpuTensors {
  /** θ of these tensors, one buffer each in the graph's element type; the weights own them from then on. */
  theta(tensors: readonly TouchedTensor[]): Promise<Map<string, GPUBuffer>>;
  /** A dense offset's tensors as the file stores them, by denseKey; the weights own them from then on. */
  dense(tensors: readonly DenseTensor[]): Promise<Map<string, GPUBuffer>>;
}

export const denseKey = (d: DenseTensor) => `${d.file}@${d.offset}`;

/** Work per submitted merge batch: small enough that a slider move cancels a merge of a large UNet quickly. */
const MERGE_BATCH_BYTES = 64 * 2 ** 20;
const OWNER = 'weights';

type Resident = { kind: 'lora'; terms: { down: GPUBuffer; up: GPUBuffer; rank: number; scale: number }[] } | { kind: 'dense'; delta: GPUBuffer; dtype: 'f32' | 'f16' };

interface Layer {
  t: TouchedTensor;
  /** θ_pos (stacked: [θ_pos; θ_neg]). */
  pos: GPUBuffer;
  /** Grouped: θ_neg where it differs from θ_pos. */
  neg?: GPUBuffer;
  eta?: Resident;
  delta?: Resident;
  /** The (η, δ) coefficients θ_neg holds relative to θ_pos; undefined: not merged yet or invalidated. */
  merged?: { a: number; b: number };
}

const bytesOf = (t: TouchedTensor) => t.length * (t.type === 'float16' ? 2 : 4);
const dtypeOf = (t: TouchedTensor): ElementType => (t.type === 'float16' ? 'f16' : 'f32');

export async function createGpuWeights(ort: Ort, device: GPUDevice, tracker: BufferTracker, touched: readonly TouchedTensor[], mode: WeightMode, tensors: GpuTensors): Promise<GpuWeights> {
  const kernels = createMergeKernels(device);
  const stacked = mode === 'stacked';
  const owned = new Set<GPUBuffer>();
  const own = (buffer: GPUBuffer) => (owned.add(buffer), buffer);
  const destroy = (buffer: GPUBuffer) => {
    owned.delete(buffer);
    tracker.destroy(buffer);
  };
  const upload = (data: ArrayBufferView, label: string) => own(tracker.create(OWNER, data.byteLength, { data, label }));
  /** η's or δ's dense tensors of these layers, streamed to the GPU in one pass over their files. */
  const denseOf = async (list: readonly TouchedTensor[], role: LoraRole) => {
    const wanted = list.flatMap((t) => (t[role]?.kind === 'dense' ? [t[role].tensor] : []));
    const buffers = wanted.length ? await tensors.dense(wanted) : new Map<string, GPUBuffer>();
    buffers.forEach(own);
    return buffers;
  };
  const resident = (offset: TensorOffset | undefined, label: string, dense: Map<string, GPUBuffer>): Resident | undefined => {
    if (!offset) return undefined;
    if (offset.kind === 'lora') {
      return { kind: 'lora', terms: offset.terms.map(({ entry, scale }, i) => ({ down: upload(entry.down, `${label} down ${i}`), up: upload(entry.up, `${label} up ${i}`), rank: entry.rank, scale: entry.scale * scale })) };
    }
    const buffer = dense.get(denseKey(offset.tensor));
    if (!buffer) throw new Error(`${label}: its dense tensor was not streamed to the GPU`);
    const { dtype } = offset.tensor;
    if (dtype !== 'F32' && dtype !== 'F16') throw new Error(`${label}: a dense offset in ${dtype} (the GPU merge reads F32 and F16; prepare the model again)`);
    return { kind: 'dense', delta: buffer, dtype: dtype === 'F16' ? 'f16' : 'f32' };
  };
  const free = (r: Resident | undefined) => {
    if (r?.kind === 'lora') r.terms.forEach((term) => [term.down, term.up].forEach(destroy));
    else if (r) destroy(r.delta);
  };

  const [thetas, etaDense, deltaDense] = [await tensors.theta(touched), await denseOf(touched, 'eta'), await denseOf(touched, 'delta')];
  thetas.forEach(own);
  const layers: Layer[] = touched.map((t) => ({
    t,
    // Grouped: θ's own buffer becomes θ_pos. Stacked: θ goes into the first half of [θ_pos; θ_neg] (placePositive).
    pos: stacked ? own(tracker.create(OWNER, 2 * bytesOf(t), { label: `[θ_pos; θ_neg] ${t.name}` })) : thetas.get(t.name)!,
    eta: resident(t.eta, `η ${t.name}`, etaDense),
    delta: resident(t.delta, `δ ${t.name}`, deltaDense),
  }));
  const stats: MergeStats = { merges: 0, bytes: 0, milliseconds: 0, tensors: 0 };

  const terms = (r: Resident | undefined, coefficient: number): MergeTerm[] => {
    if (!r || coefficient === 0) return [];
    if (r.kind === 'dense') return [{ kind: 'dense', delta: r.delta, dtype: r.dtype, scale: coefficient }];
    return r.terms.map((term) => ({ kind: 'lora', down: term.down, up: term.up, rank: term.rank, scale: coefficient * term.scale }));
  };
  // A site is a matrix a LoRA can land on; any other tensor (a 3×3 conv, a norm's scale) only takes dense terms.
  const shape = (t: TouchedTensor): MergeShape => (t.site ? { inFeatures: t.site.inFeatures, outFeatures: t.site.outFeatures, layout: t.site.layout } : { elements: t.length });
  const termBytes = (l: Layer, list: MergeTerm[]) => list.reduce((s, term) => s + (term.kind === 'lora' ? (l.t.site!.inFeatures + l.t.site!.outFeatures) * term.rank * 4 : (term.dtype === 'f16' ? 2 : 4) * l.t.length), 0);

  /** θ_pos = θ + η: θ placed (stacked: copied into its half, its buffer freed), η merged in place. */
  function mergePositive(theta: Map<string, GPUBuffer>) {
    const encoder = device.createCommandEncoder({ label: 'θ_pos' });
    const copied: GPUBuffer[] = [];
    for (const l of layers) {
      const buffer = theta.get(l.t.name)!;
      if (stacked) {
        encoder.copyBufferToBuffer(buffer, 0, l.pos, 0, Math.ceil(bytesOf(l.t) / 4) * 4);
        copied.push(buffer);
      } else if (buffer !== l.pos) {
        destroy(l.pos);
        l.pos = buffer;
      }
      l.merged = undefined;
      const eta = terms(l.eta, 1);
      if (eta.length) kernels.encodeMerge(encoder, { base: l.pos, out: l.pos, ...shape(l.t), terms: eta, dtype: dtypeOf(l.t) });
    }
    device.queue.submit([encoder.finish()]);
    kernels.recycle();
    copied.forEach(destroy); // after the submit: the queued copies keep them alive
  }
  mergePositive(thetas);

  /** θ_neg = θ_pos + (α − 1)·η + β·δ for the layers whose coefficients changed, in cancellable batches. */
  async function mergeNegative(alpha: number, beta: number, signal?: AbortSignal) {
    const started = performance.now();
    const wanted = (l: Layer) => ({ a: l.eta ? alpha - 1 : 0, b: l.delta ? beta : 0 });
    const todo = layers.filter((l) => {
      const { a, b } = wanted(l);
      return l.merged?.a !== a || l.merged?.b !== b;
    });
    let bytes = 0;
    for (let first = 0; first < todo.length;) {
      if (signal?.aborted) throw abortError();
      let batchBytes = 0;
      const batch: Layer[] = [];
      while (first < todo.length && (batch.length === 0 || batchBytes < MERGE_BATCH_BYTES)) {
        batch.push(todo[first++]);
        batchBytes += 2 * bytesOf(batch[batch.length - 1].t);
      }
      bytes += encodeNegative(batch, wanted);
      await device.queue.onSubmittedWorkDone();
    }
    if (todo.length) Object.assign(stats, { merges: stats.merges + 1, bytes, milliseconds: performance.now() - started, tensors: todo.length });
  }

  function encodeNegative(batch: Layer[], wanted: (l: Layer) => { a: number; b: number }): number {
    const encoder = device.createCommandEncoder({ label: 'θ_neg' });
    let bytes = 0;
    const scratchBytes = stacked ? Math.max(...batch.map((l) => bytesOf(l.t))) : 0;
    const scratch = scratchBytes ? own(tracker.create(OWNER, scratchBytes, { label: 'θ_pos copy' })) : undefined;
    try {
      for (const l of batch) {
        const { a, b } = wanted(l);
        const list = [...terms(l.eta, a), ...terms(l.delta, b)];
        const job = { ...shape(l.t), terms: list, dtype: dtypeOf(l.t) };
        if (stacked) {
          // [θ_pos; θ_neg]: θ_pos's half to the scratch buffer, then θ_neg = scratch + terms into the second half.
          encoder.copyBufferToBuffer(l.pos, 0, scratch!, 0, Math.ceil(bytesOf(l.t) / 4) * 4);
          kernels.encodeMerge(encoder, { ...job, base: scratch!, out: l.pos, outOffset: l.t.length });
        } else if (list.length === 0) {
          if (l.neg) destroy(l.neg); // θ_neg = θ_pos: the θ_pos buffer serves both
          l.neg = undefined;
        } else {
          l.neg ??= own(tracker.create(OWNER, bytesOf(l.t), { label: `θ_neg ${l.t.name}` }));
          kernels.encodeMerge(encoder, { ...job, base: l.pos, out: l.neg });
        }
        l.merged = { a, b };
        bytes += (list.length || stacked ? 2 * bytesOf(l.t) : 0) + termBytes(l, list);
      }
      device.queue.submit([encoder.finish()]);
    } finally {
      kernels.recycle();
      if (scratch) destroy(scratch); // destroyed after submit: WebGPU keeps it alive for the queued work
    }
    return bytes;
  }

  const tensorOf = (buffer: GPUBuffer, t: TouchedTensor, dims: number[]) => ort.Tensor.fromGpuBuffer(buffer, { dataType: t.type, dims });
  const stackedFeeds: Feeds = stacked ? Object.fromEntries(layers.map((l) => [l.t.site!.weightName, tensorOf(l.pos, l.t, [2, ...l.t.dims])])) : {};

  return {
    mode,
    async callsFor(ids, signal) {
      const all = ids.map((_, i) => i);
      if (stacked) {
        const plan = planBatch(ids);
        if (plan.negative) {
          const { alpha, beta } = parseNegativeId(plan.negative);
          await mergeNegative(alpha, beta, signal);
        }
        return [{ samples: all, feeds: { ...stackedFeeds, [plan.input]: new ort.Tensor('int64', plan.sets, [ids.length]) } }];
      }
      const calls: WeightCall[] = [];
      for (const [id, samples] of groupByWeightSet(ids)) {
        if (id !== POSITIVE) {
          const { alpha, beta } = parseNegativeId(id);
          await mergeNegative(alpha, beta, signal);
        }
        const buffer = (l: Layer) => (id === POSITIVE ? l.pos : l.neg ?? l.pos);
        calls.push({ samples, feeds: Object.fromEntries(layers.map((l) => [l.t.name, tensorOf(buffer(l), l.t, l.t.dims)])) });
      }
      return calls;
    },
    async replace(role, next) {
      if (next.length !== layers.length || next.some((t, i) => t.name !== layers[i].t.name)) throw new Error(`replace ${role}: the touched tensors changed (a new UNet session is needed)`);
      const dense = await denseOf(next, role);
      // θ_pos holds θ + η: a new η needs θ again, streamed from the model's files.
      const theta = role === 'eta' ? await tensors.theta(next) : undefined;
      theta?.forEach(own);
      layers.forEach((l, i) => {
        free(l[role]);
        l.t = next[i];
        l[role] = resident(next[i][role], `${roleName(role)} ${l.t.name}`, dense);
        l.merged = undefined;
      });
      if (theta) mergePositive(theta);
    },
    residentBytes: () => layers.reduce((sum, l) => sum + l.pos.size + (l.neg?.size ?? 0), 0),
    stats: () => ({ ...stats }),
    release() {
      kernels.destroy();
      [...owned].forEach(destroy);
    },
  };
}

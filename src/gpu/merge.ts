// LoRA / dense-delta weight merge on the GPU (merge.wgsl):
//   W' = W + Σᵢ sᵢ·(Bᵢ·Aᵢ) + Σⱼ s_j·Dⱼ,   A = down [rank, in], B = up [out, rank], D shaped like W,
// for W stored 'out-in' ([out, in]: Linear, 1x1 Conv) or 'in-out' ([in, out]: diffusers' ONNX MatMul initializers),
// or, for jobs with dense terms only, W of any shape given by its element count (3x3 convs, GroupNorm scales [C,1,1],
// biases). `base` is only read, `out` is written (they may be the same buffer: an in-place merge), so the worker can
// keep θ, η, δ resident and re-merge θ_neg = θ + α·η + β·δ whenever a slider moves.
//
// Element types: W and W' share the job's `dtype`; a dense D has its own (an fp32 η on an fp16 model and the
// reverse both work); LoRA factors are float32 (small, decoded on the CPU). 'f16' buffers hold IEEE binary16 bits,
// read and written as u32 words with WGSL's core pack2x16float / unpack2x16float (half.wgsl): no 'shader-f16' needed,
// so float16 weights merge on every adapter, SwiftShader included. An `enable f16;` variant would move the same bytes
// (the kernel is bandwidth-bound and sums in f32 anyway), so there is none. ORT itself does need the feature:
// onnxruntime-web 1.30's WebGPU EP creates a session for a float16 graph on a device without 'shader-f16', but its
// first run fails ("Program MatMulNaive requires f16 but the device does not support it", tried on Dawn/SwiftShader
// with the weight fed from a CPU tensor and from our GPU buffer alike). There a float16 model must run as a float32
// graph; cast.ts turns float16 weight bytes into float32 buffers on the GPU.
// Every tensor may start at any element of its buffer (baseOffset, outOffset, a dense term's offset), odd ones too:
// the worker stacks θ_pos and θ_neg in one [2, …] buffer, and an f16 word may hold one element of each. The thread
// that owns a word keeps the half it does not write (merge.wgsl).
//
// Work plan per job: W's elements are cut into chunks whose windows fit maxStorageBufferBindingSize and whose
// dispatch fits maxComputeWorkgroupsPerDimension (folded into a 2D grid); per chunk, one dispatch per "pass" of
// up to two LoRAs and one dense term (7 storage bindings: within WebGPU's default of 8 per stage). The common
// θ + α·η + β·δ is one pass: W is read once and W' written once.
// Nothing GPU-side is allocated per call except bind groups: pipelines (one per W type × dense type, specialised
// with override constants) and the layout are cached, and the per-dispatch parameters live in a pooled ring of
// uniform slots (see `recycle`).
//
// Use (buffers made with createWeightBuffer from buffers.ts, so ORT can take `out`):
//   const kernels = createMergeKernels(device);
//   kernels.merge([{ base: theta, out: stacked, outOffset: 320 * 320, dtype: 'f16',
//                    inFeatures: 320, outFeatures: 320, layout: 'in-out',
//                    terms: [{ kind: 'dense', delta: eta, dtype: 'f32', scale: alpha },
//                            { kind: 'lora', down: deltaA, up: deltaB, rank: 8, scale: beta * deltaScale }] },
//                  { base: convTheta, out: convTheta, elements: 320 * 320 * 9, dtype: 'f16',      // in place
//                    terms: [{ kind: 'dense', delta: convEta, scale: alpha - 1 }] }]);
//   // or kernels.encodeMerge(encoder, job) ... queue.submit(...); kernels.recycle();
// Terms with scale 0 are skipped. Errors are thrown before anything is encoded.
import { USAGE_COPY_DST, USAGE_STORAGE, USAGE_UNIFORM } from './buffers.ts';
import { bytesPerElement, bytesToHold, checkElementType, windowOf, withHalfFunctions, wordsTouched, type ElementType, type Region, type Window } from './element-type.ts';
import mergeSource from './merge.wgsl?raw';
import { dispatchGrid } from './param-slots.ts';

export type WeightLayout = 'in-out' | 'out-in';

export type MergeTerm =
  | { kind: 'lora'; down: GPUBuffer; up: GPUBuffer; rank: number; scale: number }
  | {
      kind: 'dense';
      delta: GPUBuffer;
      scale: number;
      /** D's element type (default: the job's dtype). */
      dtype?: ElementType;
      /** Element index in `delta` where D starts (default 0). */
      offset?: number;
    };

/** W as a matrix (LoRA terms need its rows and columns), or only its element count (a job with dense terms only). */
export type MergeShape =
  | { inFeatures: number; outFeatures: number; layout: WeightLayout; elements?: undefined }
  | { elements: number; inFeatures?: undefined; outFeatures?: undefined; layout?: undefined };

export type MergeJob = MergeShape & {
  base: GPUBuffer;
  out: GPUBuffer;
  terms: MergeTerm[];
  /** Element type of W and W' (default 'f32'). */
  dtype?: ElementType;
  /** Element index in `base` where W starts (default 0). */
  baseOffset?: number;
  /**
   * Element index in `out` where W' starts (default 0). The worker stacks θ_pos and θ_neg in one [2, …] buffer per
   * site (src/onnx/passes/stack-weight-sets.ts) and merges each set into its half; any offset works, aligned or not.
   * In place (base === out) the two offsets must be equal: WebGPU cannot bind one buffer read-only and writable in
   * one dispatch, so W' can only replace W.
   */
  outOffset?: number;
};

/** The limits the planner obeys; each defaults to the device's own value and may only be lowered (tests do). */
export interface MergeLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxComputeWorkgroupsPerDimension: number;
}

export interface MergeKernels {
  /** Records the merge into `encoder`. Its uniform slots stay reserved until `recycle()`: call that after submit. */
  encodeMerge(encoder: GPUCommandEncoder, job: MergeJob): void;
  /** Encodes all jobs, submits them, and recycles their uniform slots (writes after a submit are queue-ordered). */
  merge(jobs: MergeJob | MergeJob[]): void;
  /** Frees every uniform slot. Only once all command buffers that used them have been submitted. */
  recycle(): void;
  /** How many uniform buffers the pool holds and dispatches recorded so far (tests: no growth per call). */
  stats(): { uniformBuffers: number; dispatches: number };
  destroy(): void;
}

export interface MergeChunk {
  first: number; // W's element index of the chunk's first element
  count: number; // elements in the chunk
  threads: number; // one per word of W' the chunk touches
  gridX: number;
  gridY: number;
}

export const WORKGROUP_SIZE = 256; // must match WG in merge.wgsl
const LORAS_PER_PASS = 2; // slots in merge.wgsl
const PARAMS_BYTES = 64; // struct Params in merge.wgsl
const SLOTS_PER_UNIFORM_BUFFER = 64;
const MAX_UNIFORM_SLOTS = 1 << 16; // a pool this large means recycle() is never called
const U32_MAX = 0xffffffff;

const align4 = (n: number) => Math.ceil(n / 4) * 4;

/**
 * Splits `total` elements of W into chunks whose windows into `out` and each of `inputs` fit one storage binding and
 * whose threads fit one dispatch. Throws naming the limit when even one element cannot be placed.
 */
export function planChunks(total: number, out: Region, inputs: Region[], limits: MergeLimits, storageOffsetAlignment: number): MergeChunk[] {
  const maxWindow = Math.floor(limits.maxStorageBufferBindingSize / 4) * 4;
  const maxGrid = limits.maxComputeWorkgroupsPerDimension;
  const perDispatch = Math.min(maxGrid * maxGrid * WORKGROUP_SIZE, 2 ** 31); // thread indices stay in u32
  const regions = [out, ...inputs];
  const whole = total <= perDispatch && regions.every((r) => windowOf(r, 0, total, storageOffsetAlignment).size <= maxWindow);
  // A window starts up to (alignment - 1) bytes before its first element and ends on a whole word.
  const widest = Math.max(...regions.map((r) => bytesPerElement(r.type)));
  const perChunk = whole ? total : Math.min(Math.floor((maxWindow - storageOffsetAlignment) / widest), perDispatch);
  if (perChunk < 1) {
    throw new Error(
      `merge: maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize} bytes) is too small to bind ` +
        `any chunk of a weight (storage offsets align to ${storageOffsetAlignment} bytes)`,
    );
  }
  const chunks: MergeChunk[] = [];
  for (let first = 0; first < total; first += perChunk) {
    const count = Math.min(perChunk, total - first);
    const threads = wordsTouched(out.type, out.offset + first, count);
    const [gridX, gridY] = dispatchGrid(threads, WORKGROUP_SIZE, maxGrid, 'merge');
    chunks.push({ first, count, threads, gridX, gridY });
  }
  return chunks;
}

type LoraTerm = Extract<MergeTerm, { kind: 'lora' }>;
type DenseTerm = Extract<MergeTerm, { kind: 'dense' }>;

interface Pass {
  loras: LoraTerm[];
  dense?: DenseTerm;
}

/** Groups the non-zero terms into passes of ≤ 2 LoRAs and ≤ 1 dense delta; at least one pass (a plain copy). */
export function planPasses(terms: MergeTerm[]): Pass[] {
  const live = terms.filter((t) => t.scale !== 0); // a slider at 0 costs nothing
  const loras = live.filter((t): t is LoraTerm => t.kind === 'lora');
  const denses = live.filter((t): t is DenseTerm => t.kind === 'dense');
  const count = Math.max(1, Math.ceil(loras.length / LORAS_PER_PASS), denses.length);
  const passes: Pass[] = [];
  for (let p = 0; p < count; p++) {
    passes.push({ loras: loras.slice(p * LORAS_PER_PASS, (p + 1) * LORAS_PER_PASS), dense: denses[p] });
  }
  return passes;
}

/** W's element count: inFeatures × outFeatures for a matrix, `elements` otherwise. */
const elementCount = (job: MergeShape): number => job.elements ?? job.inFeatures * job.outFeatures;

const regionsOf = (job: MergeJob) => {
  const type = job.dtype ?? 'f32';
  return {
    base: { type, offset: job.baseOffset ?? 0 },
    out: { type, offset: job.outOffset ?? 0 },
    dense: (t: DenseTerm): Region => ({ type: t.dtype ?? type, offset: t.offset ?? 0 }),
  };
};

function checkPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`merge: ${what} must be a positive integer, got ${value}`);
}

function checkOffset(value: number | undefined, what: string): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new Error(`merge: ${what} must be a non-negative integer, got ${value}`);
  }
}

function checkBuffer(buffer: GPUBuffer, need: number, what: string, limits: MergeLimits, whole: boolean): void {
  if (need > limits.maxBufferSize) {
    throw new Error(`merge: ${what} needs ${need} bytes, over maxBufferSize (${limits.maxBufferSize}); split the weight`);
  }
  if (whole && need > limits.maxStorageBufferBindingSize) {
    throw new Error(
      `merge: ${what} needs ${need} bytes in one binding, over maxStorageBufferBindingSize ` +
        `(${limits.maxStorageBufferBindingSize})`,
    );
  }
  if (buffer.size < need) throw new Error(`merge: ${what} is ${buffer.size} bytes, needs at least ${need}`);
  if (!(buffer.usage & USAGE_STORAGE)) throw new Error(`merge: ${what} lacks GPUBufferUsage.STORAGE`);
}

/** Checks W's shape: a matrix (LoRA terms allowed) or an element count. */
function checkShape(job: MergeJob): void {
  const matrixKeys = (['inFeatures', 'outFeatures', 'layout'] as const).filter((k) => job[k] !== undefined);
  if (job.elements !== undefined) {
    if (matrixKeys.length) throw new Error(`merge: give W's shape as elements or as inFeatures/outFeatures/layout, not both (${matrixKeys.join(', ')} given)`);
    checkPositiveInt(job.elements, 'elements');
    return;
  }
  if (job.layout !== 'in-out' && job.layout !== 'out-in') throw new Error(`merge: unknown layout ${String(job.layout)}`);
  checkPositiveInt(job.inFeatures, 'inFeatures');
  checkPositiveInt(job.outFeatures, 'outFeatures');
}

function checkLora(t: LoraTerm, idx: number, job: MergeJob, limits: MergeLimits): void {
  if (job.inFeatures === undefined) {
    throw new Error(`merge: term ${idx} (LoRA) needs W as a matrix (inFeatures, outFeatures, layout); this job gives only elements (${job.elements})`);
  }
  checkPositiveInt(t.rank, `term ${idx} rank`);
  if (t.rank * Math.max(job.inFeatures, job.outFeatures) > U32_MAX) throw new Error(`merge: term ${idx} rank too large`);
  if (t.down === job.out || t.up === job.out) throw new Error(`merge: term ${idx} (LoRA) reads the output buffer`);
  checkBuffer(t.down, align4(t.rank * job.inFeatures * 4), `term ${idx} LoRA down [${t.rank}, ${job.inFeatures}]`, limits, true);
  checkBuffer(t.up, align4(job.outFeatures * t.rank * 4), `term ${idx} LoRA up [${job.outFeatures}, ${t.rank}]`, limits, true);
}

function checkDense(t: DenseTerm, idx: number, job: MergeJob, limits: MergeLimits): void {
  if (t.dtype !== undefined) checkElementType(t.dtype, 'merge', `term ${idx} (dense) dtype`);
  checkOffset(t.offset, `term ${idx} (dense) offset`);
  if (t.delta === job.out) throw new Error(`merge: term ${idx} (dense) reads the output buffer`);
  checkBuffer(t.delta, bytesToHold(regionsOf(job).dense(t), elementCount(job)), `term ${idx} (dense delta)`, limits, false);
}

/** Validates a job against the limits; throws a specific error for the first problem found. */
export function validateJob(job: MergeJob, limits: MergeLimits): void {
  if (job.dtype !== undefined) checkElementType(job.dtype, 'merge', 'dtype');
  checkShape(job);
  const n = elementCount(job);
  if (n > U32_MAX) throw new Error(`merge: W has ${n} elements, more than u32 indices reach`);
  checkOffset(job.baseOffset, 'baseOffset');
  checkOffset(job.outOffset, 'outOffset');
  const { base, out } = regionsOf(job);
  if (job.base === job.out && base.offset !== out.offset) {
    throw new Error(
      `merge: base and out are one buffer at different offsets (${base.offset}, ${out.offset}); WebGPU cannot bind a ` +
        'buffer read-only and writable in one dispatch, so merge in place (equal offsets) or into another buffer',
    );
  }
  checkBuffer(job.base, bytesToHold(base, n), base.offset ? `base (W at element ${base.offset})` : 'base', limits, false);
  checkBuffer(job.out, bytesToHold(out, n), out.offset ? `out (W' at element ${out.offset})` : 'out', limits, false);
  job.terms.forEach((t, idx) => {
    if (!Number.isFinite(t.scale)) throw new Error(`merge: term ${idx} has a non-finite scale ${t.scale}`);
    if (t.kind === 'dense') checkDense(t, idx, job, limits);
    else if (t.kind === 'lora') checkLora(t, idx, job, limits);
    else throw new Error(`merge: term ${idx} has unknown kind ${String((t as { kind: unknown }).kind)}`);
  });
}

function effectiveLimits(device: GPUDevice, requested?: Partial<MergeLimits>): MergeLimits {
  const pick = (key: keyof MergeLimits) => Math.min(device.limits[key], requested?.[key] ?? Infinity);
  return {
    maxStorageBufferBindingSize: pick('maxStorageBufferBindingSize'),
    maxBufferSize: pick('maxBufferSize'),
    maxComputeWorkgroupsPerDimension: pick('maxComputeWorkgroupsPerDimension'),
  };
}

function createLayout(device: GPUDevice): GPUBindGroupLayout {
  const storage = (binding: number, type: GPUBufferBindingType): GPUBindGroupLayoutEntry => ({
    binding,
    visibility: GPUShaderStage_COMPUTE,
    buffer: { type },
  });
  return device.createBindGroupLayout({
    label: 'merge',
    entries: [
      { binding: 0, visibility: GPUShaderStage_COMPUTE, buffer: { type: 'uniform' } },
      storage(1, 'read-only-storage'),
      storage(2, 'storage'),
      ...[3, 4, 5, 6, 7].map((b) => storage(b, 'read-only-storage')),
    ],
  });
}
const GPUShaderStage_COMPUTE = 0x4; // GPUShaderStage.COMPUTE (the global is absent in Node until `webgpu` loads)

/** A ring of 256-byte uniform slots, grown on demand and reset by `reset()`. */
function createUniformPool(device: GPUDevice) {
  const stride = Math.max(PARAMS_BYTES, device.limits.minUniformBufferOffsetAlignment);
  const buffers: GPUBuffer[] = [];
  let next = 0;
  return {
    take(): { buffer: GPUBuffer; offset: number } {
      if (next >= MAX_UNIFORM_SLOTS) {
        throw new Error('merge: uniform pool exhausted; call recycle() after submitting encodeMerge() work');
      }
      const index = Math.floor(next / SLOTS_PER_UNIFORM_BUFFER);
      if (index === buffers.length) {
        buffers.push(
          device.createBuffer({
            label: `merge params ${index}`,
            size: stride * SLOTS_PER_UNIFORM_BUFFER,
            usage: USAGE_UNIFORM | USAGE_COPY_DST,
          }),
        );
      }
      const offset = (next % SLOTS_PER_UNIFORM_BUFFER) * stride;
      next++;
      return { buffer: buffers[index], offset };
    },
    /** Frees every slot taken since `mark` (0: all of them). */
    reset(mark = 0): void {
      next = mark;
    },
    mark: () => next,
    size: () => buffers.length,
    destroy(): void {
      buffers.forEach((b) => b.destroy());
      buffers.length = 0;
    },
  };
}

interface ChunkWindows {
  base: Window;
  out: Window;
  dense?: Window;
}

function encodeParams(job: MergeJob, chunk: MergeChunk, pass: Pass, fromBase: boolean, w: ChunkWindows): ArrayBuffer {
  const data = new ArrayBuffer(PARAMS_BYTES);
  const u = new Uint32Array(data);
  const f = new Float32Array(data);
  u[0] = chunk.count;
  u[1] = chunk.first;
  u[2] = w.base.index;
  u[3] = job.layout === 'out-in' ? job.inFeatures : (job.outFeatures ?? 1);
  u[4] = job.layout === 'in-out' ? 1 : 0;
  u[5] = job.inFeatures ?? 0;
  u[6] = pass.loras[0]?.rank ?? 0;
  u[7] = pass.loras[1]?.rank ?? 0;
  u[8] = fromBase ? 1 : 0;
  u[9] = pass.dense ? 1 : 0;
  u[10] = chunk.gridX;
  u[11] = w.out.index;
  u[12] = w.dense?.index ?? 0;
  f[13] = pass.loras[0]?.scale ?? 0;
  f[14] = pass.loras[1]?.scale ?? 0;
  f[15] = pass.dense?.scale ?? 0;
  return data;
}

export function createMergeKernels(device: GPUDevice, options: { limits?: Partial<MergeLimits> } = {}): MergeKernels {
  const limits = effectiveLimits(device, options.limits);
  const alignment = device.limits.minStorageBufferOffsetAlignment;
  const layout = createLayout(device);
  const pipelineLayout = device.createPipelineLayout({ label: 'merge', bindGroupLayouts: [layout] });
  const module = device.createShaderModule({ label: 'merge', code: withHalfFunctions(mergeSource) });
  const pipelines = new Map<string, GPUComputePipeline>();
  const pool = createUniformPool(device);
  const dummy = device.createBuffer({ label: 'merge unused slot', size: 16, usage: USAGE_STORAGE });
  let dispatches = 0;

  const pipelineFor = (weight: ElementType, dense: ElementType): GPUComputePipeline => {
    const key = `${weight} ${dense}`;
    let pipeline = pipelines.get(key);
    if (!pipeline) {
      pipeline = device.createComputePipeline({
        label: `merge ${weight} W, ${dense} dense`,
        layout: pipelineLayout,
        compute: { module, entryPoint: 'main', constants: { WEIGHT_F16: Number(weight === 'f16'), DENSE_F16: Number(dense === 'f16') } },
      });
      pipelines.set(key, pipeline);
    }
    return pipeline;
  };

  const bindGroup = (job: MergeJob, chunk: MergeChunk, pass: Pass, fromBase: boolean): GPUBindGroup => {
    const regions = regionsOf(job);
    const windowIn = (region: Region) => windowOf(region, chunk.first, chunk.count, alignment);
    const windows: ChunkWindows = { base: windowIn(regions.base), out: windowIn(regions.out), dense: pass.dense && windowIn(regions.dense(pass.dense)) };
    const slot = pool.take();
    device.queue.writeBuffer(slot.buffer, slot.offset, encodeParams(job, chunk, pass, fromBase, windows));
    const bind = (buffer: GPUBuffer, w: Window): GPUBufferBinding => ({ buffer, offset: w.offset, size: w.size });
    const unused: GPUBufferBinding = { buffer: dummy };
    const inF = job.inFeatures ?? 0;
    const outF = job.outFeatures ?? 0;
    const down = (t?: LoraTerm): GPUBufferBinding => (t ? { buffer: t.down, size: align4(t.rank * inF * 4) } : unused);
    const up = (t?: LoraTerm): GPUBufferBinding => (t ? { buffer: t.up, size: align4(outF * t.rank * 4) } : unused);
    const [l0, l1] = pass.loras;
    return device.createBindGroup({
      layout,
      entries: [
        { binding: 0, resource: { buffer: slot.buffer, offset: slot.offset, size: PARAMS_BYTES } },
        { binding: 1, resource: fromBase ? bind(job.base, windows.base) : unused },
        { binding: 2, resource: bind(job.out, windows.out) },
        { binding: 3, resource: down(l0) },
        { binding: 4, resource: up(l0) },
        { binding: 5, resource: down(l1) },
        { binding: 6, resource: up(l1) },
        { binding: 7, resource: pass.dense && windows.dense ? bind(pass.dense.delta, windows.dense) : unused },
      ],
    });
  };

  const encodeMerge = (encoder: GPUCommandEncoder, job: MergeJob): void => {
    validateJob(job, limits);
    const regions = regionsOf(job);
    const passes = planPasses(job.terms);
    const inPlace = job.base === job.out;
    const inputs = [...(inPlace ? [] : [regions.base]), ...passes.flatMap((p) => (p.dense ? [regions.dense(p.dense)] : []))];
    const chunks = planChunks(elementCount(job), regions.out, inputs, limits, alignment);
    const compute = encoder.beginComputePass({ label: 'merge' });
    for (const chunk of chunks) {
      passes.forEach((pass, p) => {
        compute.setPipeline(pipelineFor(regions.out.type, pass.dense ? regions.dense(pass.dense).type : 'f32'));
        compute.setBindGroup(0, bindGroup(job, chunk, pass, p === 0 && !inPlace));
        compute.dispatchWorkgroups(chunk.gridX, chunk.gridY);
        dispatches++;
      });
    }
    compute.end();
  };

  return {
    encodeMerge,
    merge(jobs) {
      const mark = pool.mark(); // slots before it may belong to encodeMerge() work not yet submitted
      try {
        const encoder = device.createCommandEncoder({ label: 'merge' });
        for (const job of Array.isArray(jobs) ? jobs : [jobs]) encodeMerge(encoder, job);
        device.queue.submit([encoder.finish()]);
      } finally {
        pool.reset(mark); // after submit, or nothing was submitted: either way no pending use of these slots
      }
    },
    recycle: () => pool.reset(),
    stats: () => ({ uniformBuffers: pool.size(), dispatches }),
    destroy() {
      pool.destroy();
      dummy.destroy();
      pipelines.clear();
    },
  };
}

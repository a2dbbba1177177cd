// LoRA / dense-delta weight merge on the GPU (merge.wgsl):
//   W' = W + Σᵢ sᵢ·(Bᵢ·Aᵢ) + Σⱼ s_j·Dⱼ,   A = down [rank, in], B = up [out, rank], D shaped like W,
// for W stored 'out-in' ([out, in]: Linear, 1x1 Conv) or 'in-out' ([in, out]: diffusers' ONNX MatMul initializers).
// `base` is only read, `out` is written (they may be the same buffer: an in-place merge), so the worker can keep
// θ, η, δ resident and re-merge θ_neg = θ + α·η + β·δ whenever a slider moves.
//
// Work plan per job: W's elements are cut into chunks whose windows fit maxStorageBufferBindingSize and whose
// dispatch fits maxComputeWorkgroupsPerDimension (folded into a 2D grid); per chunk, one dispatch per "pass" of
// up to two LoRAs and one dense term (7 storage bindings: within WebGPU's default of 8 per stage). The common
// θ + α·η + β·δ is one pass: W is read once and W' written once.
// Nothing GPU-side is allocated per call except bind groups: pipelines and the layout are cached per dtype and
// the per-dispatch parameters live in a pooled ring of uniform slots (see `recycle`).
//
// Use (all buffers f32 unless dtype 'f16'; made with createWeightBuffer from buffers.ts so ORT can take `out`):
//   const kernels = createMergeKernels(device);
//   kernels.merge([{ base: theta, out: thetaNeg, inFeatures: 320, outFeatures: 320, layout: 'in-out',
//                    terms: [{ kind: 'lora', down: etaA, up: etaB, rank: 8, scale: alpha * etaScale },
//                            { kind: 'lora', down: deltaA, up: deltaB, rank: 8, scale: beta * deltaScale }] }]);
//   // or kernels.encodeMerge(encoder, job) ... queue.submit(...); kernels.recycle();
// Terms with scale 0 are skipped. base === out merges in place. Errors are thrown before anything is encoded.
import { USAGE_COPY_DST, USAGE_STORAGE, USAGE_UNIFORM } from './buffers.ts';
import mergeSource from './merge.wgsl?raw';

export type WeightLayout = 'in-out' | 'out-in';
export type MergeDtype = 'f32' | 'f16';

export type MergeTerm =
  | { kind: 'lora'; down: GPUBuffer; up: GPUBuffer; rank: number; scale: number }
  | { kind: 'dense'; delta: GPUBuffer; scale: number };

export interface MergeJob {
  base: GPUBuffer;
  out: GPUBuffer;
  inFeatures: number;
  outFeatures: number;
  layout: WeightLayout;
  terms: MergeTerm[];
  /** Element type of every buffer in the job (default 'f32'); 'f16' needs the device feature 'shader-f16'. */
  dtype?: MergeDtype;
  /**
   * Element index in `out` where W' starts (default 0). The worker stacks θ_pos and θ_neg in one [2, …] buffer per
   * site (src/onnx/passes/stack-weight-sets.ts) and merges each set into its half; any offset works, aligned or not.
   */
  outOffset?: number;
}

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
  first: number; // global row-major index of the chunk's first element
  count: number; // elements in the chunk
  windowOffset: number; // byte offset of the base/out/dense windows (storage-offset aligned)
  windowSize: number; // byte size of those windows (multiple of 4)
  winOff: number; // index of `first` inside the window
  outWindowOffset: number; // the same three for `out`, whose elements start `outOffset` further on
  outWindowSize: number;
  outWinOff: number;
  gridX: number;
  gridY: number;
}

export const WORKGROUP_SIZE = 256; // must match WG in merge.wgsl
const LORAS_PER_PASS = 2; // slots in merge.wgsl
const PARAMS_BYTES = 64; // struct Params in merge.wgsl
const SLOTS_PER_UNIFORM_BUFFER = 64;
const MAX_UNIFORM_SLOTS = 1 << 16; // a pool this large means recycle() is never called
const U32_MAX = 0xffffffff;

const bytesPer = (dtype: MergeDtype) => (dtype === 'f16' ? 2 : 4);
const align4 = (n: number) => Math.ceil(n / 4) * 4;

/** The f16 shader is merge.wgsl with its storage type alias switched; both share every other line. */
export function shaderSource(dtype: MergeDtype, source: string = mergeSource): string {
  if (dtype === 'f32') return source;
  const f16 = source.replace(/^alias S = f32;/m, 'enable f16;\nalias S = f16;');
  if (f16 === source) throw new Error('merge.wgsl: the `alias S = f32;` line the f16 variant replaces is missing');
  return f16;
}

/**
 * Splits `total` elements of `bytesPerElement` into chunks that each fit one storage binding and one dispatch.
 * Throws naming the limit when even one element cannot be placed.
 */
export function planChunks(
  total: number,
  bytesPerElement: number,
  limits: MergeLimits,
  storageOffsetAlignment: number,
  outOffset = 0,
): MergeChunk[] {
  const maxWindow = Math.floor(limits.maxStorageBufferBindingSize / 4) * 4;
  const maxGrid = limits.maxComputeWorkgroupsPerDimension;
  const perDispatch = Math.min(maxGrid * maxGrid * WORKGROUP_SIZE, 2 ** 31); // thread indices stay in u32
  // An out window starting at an offset may begin up to (alignment - 1) bytes before its first element.
  const outSlack = outOffset % (storageOffsetAlignment / bytesPerElement) === 0 ? 0 : storageOffsetAlignment;
  const whole = align4(total * bytesPerElement) + outSlack <= maxWindow && total <= perDispatch;
  // Past the first chunk a window starts up to (alignment - 1) bytes before its first element.
  const perChunk = whole
    ? total
    : Math.min(Math.floor((maxWindow - storageOffsetAlignment) / bytesPerElement), perDispatch);
  if (perChunk < 1) {
    throw new Error(
      `merge: maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize} bytes) is too small to bind ` +
        `any chunk of a weight (storage offsets align to ${storageOffsetAlignment} bytes)`,
    );
  }
  const chunks: MergeChunk[] = [];
  for (let first = 0; first < total; first += perChunk) {
    const count = Math.min(perChunk, total - first);
    const window = (firstElement: number) => {
      const startByte = firstElement * bytesPerElement;
      const offset = Math.floor(startByte / storageOffsetAlignment) * storageOffsetAlignment;
      return { offset, size: align4(startByte + count * bytesPerElement - offset), index: (startByte - offset) / bytesPerElement };
    };
    const [w, o] = [window(first), window(outOffset + first)];
    const groups = Math.ceil(count / WORKGROUP_SIZE);
    const gridX = Math.min(groups, maxGrid);
    const gridY = Math.ceil(groups / gridX);
    chunks.push({
      first, count, windowOffset: w.offset, windowSize: w.size, winOff: w.index,
      outWindowOffset: o.offset, outWindowSize: o.size, outWinOff: o.index, gridX, gridY,
    });
  }
  return chunks;
}

interface Pass {
  loras: Extract<MergeTerm, { kind: 'lora' }>[];
  dense?: Extract<MergeTerm, { kind: 'dense' }>;
}

/** Groups the non-zero terms into passes of ≤ 2 LoRAs and ≤ 1 dense delta; at least one pass (a plain copy). */
export function planPasses(terms: MergeTerm[]): Pass[] {
  const live = terms.filter((t) => t.scale !== 0); // a slider at 0 costs nothing
  const loras = live.filter((t): t is Pass['loras'][number] => t.kind === 'lora');
  const denses = live.filter((t): t is NonNullable<Pass['dense']> => t.kind === 'dense');
  const count = Math.max(1, Math.ceil(loras.length / LORAS_PER_PASS), denses.length);
  const passes: Pass[] = [];
  for (let p = 0; p < count; p++) {
    passes.push({ loras: loras.slice(p * LORAS_PER_PASS, (p + 1) * LORAS_PER_PASS), dense: denses[p] });
  }
  return passes;
}

function checkPositiveInt(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`merge: ${what} must be a positive integer, got ${value}`);
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

/** Validates a job against the limits; throws a specific error for the first problem found. */
export function validateJob(job: MergeJob, limits: MergeLimits, hasF16: boolean): void {
  const dtype = job.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw new Error(`merge: unknown dtype ${String(dtype)}`);
  if (dtype === 'f16' && !hasF16) throw new Error("merge: dtype 'f16' needs the device feature 'shader-f16'");
  if (job.layout !== 'in-out' && job.layout !== 'out-in') throw new Error(`merge: unknown layout ${String(job.layout)}`);
  checkPositiveInt(job.inFeatures, 'inFeatures');
  checkPositiveInt(job.outFeatures, 'outFeatures');
  const n = job.inFeatures * job.outFeatures;
  if (n > U32_MAX) throw new Error(`merge: ${job.inFeatures}x${job.outFeatures} has more elements than u32 indices reach`);
  const b = bytesPer(dtype);
  const weightBytes = align4(n * b);
  const outOffset = job.outOffset ?? 0;
  if (!Number.isSafeInteger(outOffset) || outOffset < 0) throw new Error(`merge: outOffset must be a non-negative integer, got ${outOffset}`);
  if (outOffset && job.base === job.out) throw new Error('merge: an in-place merge (base === out) cannot have an outOffset');
  checkBuffer(job.base, weightBytes, 'base', limits, false);
  checkBuffer(job.out, align4((outOffset + n) * b), outOffset ? `out (W' at element ${outOffset})` : 'out', limits, false);
  job.terms.forEach((t, idx) => {
    if (!Number.isFinite(t.scale)) throw new Error(`merge: term ${idx} has a non-finite scale ${t.scale}`);
    if (t.kind === 'dense') {
      if (t.delta === job.out) throw new Error(`merge: term ${idx} (dense) reads the output buffer`);
      checkBuffer(t.delta, weightBytes, `term ${idx} (dense delta)`, limits, false);
    } else if (t.kind === 'lora') {
      checkPositiveInt(t.rank, `term ${idx} rank`);
      if (t.rank * Math.max(job.inFeatures, job.outFeatures) > U32_MAX) throw new Error(`merge: term ${idx} rank too large`);
      if (t.down === job.out || t.up === job.out) throw new Error(`merge: term ${idx} (LoRA) reads the output buffer`);
      checkBuffer(t.down, align4(t.rank * job.inFeatures * b), `term ${idx} LoRA down [${t.rank}, ${job.inFeatures}]`, limits, true);
      checkBuffer(t.up, align4(job.outFeatures * t.rank * b), `term ${idx} LoRA up [${job.outFeatures}, ${t.rank}]`, limits, true);
    } else {
      throw new Error(`merge: term ${idx} has unknown kind ${String((t as { kind: unknown }).kind)}`);
    }
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

function encodeParams(job: MergeJob, chunk: MergeChunk, pass: Pass, fromBase: boolean): ArrayBuffer {
  const data = new ArrayBuffer(PARAMS_BYTES);
  const u = new Uint32Array(data);
  const f = new Float32Array(data);
  u[0] = chunk.count;
  u[1] = chunk.first;
  u[2] = chunk.winOff;
  u[3] = job.layout === 'out-in' ? job.inFeatures : job.outFeatures;
  u[4] = job.layout === 'out-in' ? 0 : 1;
  u[5] = job.inFeatures;
  u[6] = pass.loras[0]?.rank ?? 0;
  u[7] = pass.loras[1]?.rank ?? 0;
  u[8] = fromBase ? 1 : 0;
  u[9] = pass.dense ? 1 : 0;
  u[10] = chunk.gridX;
  u[11] = chunk.outWinOff;
  f[12] = pass.loras[0]?.scale ?? 0;
  f[13] = pass.loras[1]?.scale ?? 0;
  f[14] = pass.dense?.scale ?? 0;
  return data;
}

export function createMergeKernels(device: GPUDevice, options: { limits?: Partial<MergeLimits> } = {}): MergeKernels {
  const limits = effectiveLimits(device, options.limits);
  const alignment = device.limits.minStorageBufferOffsetAlignment;
  const hasF16 = device.features.has('shader-f16');
  const layout = createLayout(device);
  const pipelineLayout = device.createPipelineLayout({ label: 'merge', bindGroupLayouts: [layout] });
  const pipelines = new Map<MergeDtype, GPUComputePipeline>();
  const pool = createUniformPool(device);
  const dummy = device.createBuffer({ label: 'merge unused slot', size: 16, usage: USAGE_STORAGE });
  let dispatches = 0;

  const pipelineFor = (dtype: MergeDtype): GPUComputePipeline => {
    let pipeline = pipelines.get(dtype);
    if (!pipeline) {
      const module = device.createShaderModule({ label: `merge ${dtype}`, code: shaderSource(dtype) });
      pipeline = device.createComputePipeline({
        label: `merge ${dtype}`,
        layout: pipelineLayout,
        compute: { module, entryPoint: 'main' },
      });
      pipelines.set(dtype, pipeline);
    }
    return pipeline;
  };

  const bindGroup = (job: MergeJob, chunk: MergeChunk, pass: Pass, fromBase: boolean): GPUBindGroup => {
    const slot = pool.take();
    device.queue.writeBuffer(slot.buffer, slot.offset, encodeParams(job, chunk, pass, fromBase));
    const win = (buffer: GPUBuffer): GPUBufferBinding => ({ buffer, offset: chunk.windowOffset, size: chunk.windowSize });
    const outWin: GPUBufferBinding = { buffer: job.out, offset: chunk.outWindowOffset, size: chunk.outWindowSize };
    const whole = (buffer: GPUBuffer | undefined, size?: number): GPUBufferBinding =>
      buffer ? { buffer, offset: 0, size } : { buffer: dummy };
    const b = bytesPer(job.dtype ?? 'f32');
    const down = (t?: Pass['loras'][number]) => whole(t?.down, t && align4(t.rank * job.inFeatures * b));
    const up = (t?: Pass['loras'][number]) => whole(t?.up, t && align4(job.outFeatures * t.rank * b));
    const [l0, l1] = pass.loras;
    return device.createBindGroup({
      layout,
      entries: [
        { binding: 0, resource: { buffer: slot.buffer, offset: slot.offset, size: PARAMS_BYTES } },
        { binding: 1, resource: fromBase ? win(job.base) : whole(undefined) },
        { binding: 2, resource: outWin },
        { binding: 3, resource: down(l0) },
        { binding: 4, resource: up(l0) },
        { binding: 5, resource: down(l1) },
        { binding: 6, resource: up(l1) },
        { binding: 7, resource: pass.dense ? win(pass.dense.delta) : whole(undefined) },
      ],
    });
  };

  const encodeMerge = (encoder: GPUCommandEncoder, job: MergeJob): void => {
    validateJob(job, limits, hasF16);
    const dtype = job.dtype ?? 'f32';
    const chunks = planChunks(job.inFeatures * job.outFeatures, bytesPer(dtype), limits, alignment, job.outOffset);
    const passes = planPasses(job.terms);
    const inPlace = job.base === job.out;
    const compute = encoder.beginComputePass({ label: 'merge' });
    compute.setPipeline(pipelineFor(dtype));
    for (const chunk of chunks) {
      passes.forEach((pass, p) => {
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

// merge.wgsl against a CPU float64 reference, on Dawn + SwiftShader in Node (see node-gpu.ts for the driver setup).
// Tolerance (f32): the standard summation bound |gpu − ref| ≤ (Σ ranks + 8)·2⁻²³·M, where
// M = |W| + Σ|s|·Σ_k|B||A| + Σ|s_d|·|D| per element (the error of an n-term f32 sum is ≤ n·2⁻²⁴·Σ|terms|; the
// factor 2 and the +8 cover the scale products, the per-pass adds and FMA contraction).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWeightBuffer, readBuffer } from './buffers.ts';
import { acquireDevice } from './device.ts';
import { fromHalfArray, toHalfArray } from './half.ts';
import {
  createMergeKernels,
  planChunks,
  planPasses,
  shaderSource,
  type MergeDtype,
  type MergeJob,
  type MergeKernels,
  type MergeLimits,
  type MergeTerm,
  type WeightLayout,
} from './merge.ts';
import { createNodeGpu } from './node-gpu.ts';

let device: GPUDevice;
let hasF16 = false;
let kernels: MergeKernels;
const owned: GPUBuffer[] = [];
const gpuErrors: string[] = []; // validation errors no scope caught: any is a bug in merge.ts

beforeAll(async () => {
  ({ device, hasF16 } = await acquireDevice(await createNodeGpu(), { onUncapturedError: (e) => gpuErrors.push(e.message) }));
  kernels = createMergeKernels(device);
});

afterEach(async () => {
  await device.queue.onSubmittedWorkDone();
  expect(gpuErrors).toEqual([]);
});

afterAll(() => {
  kernels?.destroy();
  owned.forEach((b) => b.destroy());
  device?.destroy();
});

// ---- data and buffers ----

/** Deterministic values in [-1, 1) (xorshift32), rounded to f32 so the reference sees exactly what the GPU sees. */
function randomF32(count: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function upload(values: Float32Array, dtype: MergeDtype = 'f32'): GPUBuffer {
  const buffer = createWeightBuffer(device, values.length * bytes(dtype), { data: dtype === 'f16' ? toHalfArray(values) : values });
  owned.push(buffer);
  return buffer;
}

function emptyLike(count: number, dtype: MergeDtype = 'f32'): GPUBuffer {
  const buffer = createWeightBuffer(device, count * bytes(dtype));
  owned.push(buffer);
  return buffer;
}

const bytes = (dtype: MergeDtype) => (dtype === 'f16' ? 2 : 4);

async function readBack(buffer: GPUBuffer, count: number, dtype: MergeDtype = 'f32'): Promise<Float64Array> {
  const raw = await readBuffer(device, buffer, count * bytes(dtype));
  return dtype === 'f16' ? fromHalfArray(new Uint16Array(raw)) : Float64Array.from(new Float32Array(raw));
}

// ---- CPU reference ----

type HostTerm =
  | { kind: 'lora'; down: Float32Array; up: Float32Array; rank: number; scale: number }
  | { kind: 'dense'; delta: Float32Array; scale: number };

interface HostCase {
  inF: number;
  outF: number;
  layout: WeightLayout;
  base: Float32Array;
  terms: HostTerm[];
}

/** Element index of (o, i) in W for the layout. */
const at = (c: HostCase, o: number, i: number) => (c.layout === 'out-in' ? o * c.inF + i : i * c.outF + o);

/** Float64 W' and the magnitude bound M of every element (see the header). */
function reference(c: HostCase, round: (x: number) => number = (x) => x) {
  const n = c.inF * c.outF;
  const value = new Float64Array(n);
  const mag = new Float64Array(n);
  for (let o = 0; o < c.outF; o++) {
    for (let i = 0; i < c.inF; i++) {
      const e = at(c, o, i);
      let v = round(c.base[e]);
      let m = Math.abs(v);
      for (const t of c.terms) {
        if (t.kind === 'dense') {
          v += t.scale * round(t.delta[e]);
          m += Math.abs(t.scale * round(t.delta[e]));
          continue;
        }
        let s = 0;
        let sa = 0;
        for (let k = 0; k < t.rank; k++) {
          const p = round(t.up[o * t.rank + k]) * round(t.down[k * c.inF + i]);
          s += p;
          sa += Math.abs(p);
        }
        v += t.scale * s;
        m += Math.abs(t.scale) * sa;
      }
      value[e] = v;
      mag[e] = m;
    }
  }
  return { value, mag };
}

function makeCase(inF: number, outF: number, layout: WeightLayout, ranks: number[], dense: number[], seed: number): HostCase {
  const base = randomF32(inF * outF, seed);
  const terms: HostTerm[] = ranks.map((rank, j) => ({
    kind: 'lora',
    rank,
    down: randomF32(rank * inF, seed * 31 + j * 2 + 1),
    up: randomF32(outF * rank, seed * 31 + j * 2 + 2),
    scale: [0.75, -1.5, 0.3125, 2, -0.5][j % 5],
  }));
  dense.forEach((scale, j) => terms.push({ kind: 'dense', delta: randomF32(inF * outF, seed * 77 + j), scale }));
  return { inF, outF, layout, base, terms };
}

function toJob(c: HostCase, dtype: MergeDtype = 'f32', out?: GPUBuffer): MergeJob {
  const terms: MergeTerm[] = c.terms.map((t) =>
    t.kind === 'dense'
      ? { kind: 'dense', delta: upload(t.delta, dtype), scale: t.scale }
      : { kind: 'lora', down: upload(t.down, dtype), up: upload(t.up, dtype), rank: t.rank, scale: t.scale },
  );
  const n = c.inF * c.outF;
  return { base: upload(c.base, dtype), out: out ?? emptyLike(n, dtype), inFeatures: c.inF, outFeatures: c.outF, layout: c.layout, terms, dtype };
}

function rankSum(c: HostCase): number {
  return c.terms.reduce((s, t) => s + (t.kind === 'lora' ? t.rank : 1), 0);
}

/** Largest |gpu − ref| / tolerance over all elements; ≤ 1 passes. */
function worstRatio(got: Float64Array, ref: { value: Float64Array; mag: Float64Array }, tol: (e: number) => number): number {
  let worst = 0;
  for (let e = 0; e < got.length; e++) worst = Math.max(worst, Math.abs(got[e] - ref.value[e]) / tol(e));
  return worst;
}

async function runAndCheck(c: HostCase, k: MergeKernels = kernels): Promise<void> {
  const job = toJob(c);
  k.merge(job);
  const got = await readBack(job.out, c.inF * c.outF);
  const ref = reference(c);
  const gamma = (rankSum(c) + 8) * 2 ** -23;
  expect(worstRatio(got, ref, (e) => gamma * ref.mag[e] + 1e-30)).toBeLessThanOrEqual(1);
  const baseAfter = await readBack(job.base, c.inF * c.outF);
  expect(baseAfter).toEqual(Float64Array.from(c.base)); // base is never written
}

// ---- tests ----

describe('merge kernel vs float64 reference', () => {
  const shapes: [number, number][] = [
    [1, 1],
    [17, 33],
    [64, 48],
    [320, 40],
  ];
  const rankSets = [[1], [4, 13], [8, 1, 4], [13, 8, 4, 1]];
  for (const layout of ['out-in', 'in-out'] as const) {
    shapes.forEach(([inF, outF], s) => {
      const ranks = rankSets[s];
      it(`${layout} ${inF}→${outF}, ranks ${ranks.join(',')} + dense`, async () => {
        await runAndCheck(makeCase(inF, outF, layout, ranks, [0.25], 1000 + s));
      });
    });
  }

  it('distinguishes the layouts (in-out is not out-in on the same data)', async () => {
    const c = makeCase(5, 7, 'in-out', [3], [], 5);
    const job = toJob(c);
    kernels.merge(job);
    const got = await readBack(job.out, 35);
    const wrong = reference({ ...c, layout: 'out-in' }).value;
    expect(Math.max(...got.map((g, e) => Math.abs(g - wrong[e])))).toBeGreaterThan(1e-2);
  });

  it('five LoRAs and two dense deltas (three passes per chunk)', async () => {
    const c = makeCase(24, 19, 'in-out', [2, 5, 3, 7, 1], [0.5, -2], 77);
    expect(planPasses(toJob(c).terms)).toHaveLength(3);
    await runAndCheck(c);
  });

  it('no terms or only zero scales copy base exactly', async () => {
    const c = makeCase(9, 11, 'out-in', [4], [1], 3);
    c.terms.forEach((t) => (t.scale = 0));
    const job = toJob(c);
    kernels.merge(job);
    expect(await readBack(job.out, 99)).toEqual(Float64Array.from(c.base));
    kernels.merge({ ...job, terms: [] });
    expect(await readBack(job.out, 99)).toEqual(Float64Array.from(c.base));
  });

  it('merges in place when base and out are the same buffer', async () => {
    const c = makeCase(13, 21, 'out-in', [4, 8, 2], [0.5], 11);
    const job = toJob(c);
    kernels.merge({ ...job, out: job.base });
    const got = await readBack(job.base, 13 * 21);
    const ref = reference(c);
    const gamma = (rankSum(c) + 8) * 2 ** -23;
    expect(worstRatio(got, ref, (e) => gamma * ref.mag[e])).toBeLessThanOrEqual(1);
  });

  it('re-merging with new scales (a slider move) reuses pipelines and uniform slots', async () => {
    const c = makeCase(40, 24, 'in-out', [8, 8], [], 21);
    const job = toJob(c);
    const before = kernels.stats();
    for (const alpha of [1, 0.5, -0.25, 2]) {
      (job.terms[0] as { scale: number }).scale = alpha;
      c.terms[0].scale = alpha;
      kernels.merge(job);
      const got = await readBack(job.out, 40 * 24);
      const ref = reference(c);
      const gamma = (rankSum(c) + 8) * 2 ** -23;
      expect(worstRatio(got, ref, (e) => gamma * ref.mag[e])).toBeLessThanOrEqual(1);
    }
    const after = kernels.stats();
    expect(after.uniformBuffers).toBe(Math.max(before.uniformBuffers, 1));
    expect(after.dispatches - before.dispatches).toBe(4);
  });
});

describe('work split under small limits', () => {
  const small = (limits: Partial<MergeLimits>) => createMergeKernels(device, { limits });

  it('plans aligned windows that cover every element once', () => {
    const limits = { maxStorageBufferBindingSize: 600, maxBufferSize: 1 << 30, maxComputeWorkgroupsPerDimension: 65535 };
    const chunks = planChunks(17 * 33, 4, limits, 256);
    expect(chunks.length).toBeGreaterThan(1);
    let next = 0;
    for (const ch of chunks) {
      expect(ch.first).toBe(next);
      expect(ch.windowOffset % 256).toBe(0);
      expect(ch.windowSize % 4).toBe(0);
      expect(ch.windowSize).toBeLessThanOrEqual(600);
      expect(ch.windowOffset + ch.winOff * 4).toBe(ch.first * 4);
      expect(ch.windowOffset + ch.windowSize).toBeGreaterThanOrEqual((ch.first + ch.count) * 4);
      next += ch.count;
    }
    expect(next).toBe(17 * 33);
    expect(chunks.some((ch) => ch.winOff > 0)).toBe(true);
  });

  it('splits by maxStorageBufferBindingSize (unaligned chunk starts), both layouts', async () => {
    const k = small({ maxStorageBufferBindingSize: 600 });
    for (const layout of ['out-in', 'in-out'] as const) await runAndCheck(makeCase(17, 33, layout, [4, 3], [0.5], 31), k); // factors fit 600 B
    k.destroy();
  });

  it('folds dispatches into 2D and splits by maxComputeWorkgroupsPerDimension', async () => {
    const limits = { maxComputeWorkgroupsPerDimension: 2, maxStorageBufferBindingSize: 1 << 20, maxBufferSize: 1 << 30 };
    const chunks = planChunks(64 * 48, 4, limits, 256);
    expect(chunks.map((c) => [c.count, c.gridX, c.gridY])).toEqual([
      [1024, 2, 2],
      [1024, 2, 2],
      [1024, 2, 2],
    ]);
    expect(planChunks(700, 4, limits, 256).map((c) => [c.gridX, c.gridY])).toEqual([[2, 2]]); // 3 groups: 2x2
    const k = small({ maxComputeWorkgroupsPerDimension: 2 });
    await runAndCheck(makeCase(64, 48, 'in-out', [8, 3], [1.5], 41), k);
    await runAndCheck(makeCase(35, 20, 'out-in', [5], [], 42), k);
    k.destroy();
  });

  it('names the limit when a piece cannot fit', () => {
    const c = makeCase(320, 40, 'out-in', [13], [], 51);
    const job = toJob(c);
    const tiny = small({ maxStorageBufferBindingSize: 4096 });
    const encoder = device.createCommandEncoder();
    expect(() => tiny.encodeMerge(encoder, job)).toThrow(/LoRA down \[13, 320\].*maxStorageBufferBindingSize/);
    tiny.destroy();
    const noBind = small({ maxStorageBufferBindingSize: 256 });
    expect(() => noBind.encodeMerge(encoder, { ...job, terms: [] })).toThrow(/maxStorageBufferBindingSize \(256 bytes\)/);
    noBind.destroy();
    const noBuf = small({ maxBufferSize: 1024 });
    expect(() => noBuf.encodeMerge(encoder, job)).toThrow(/base needs 51200 bytes, over maxBufferSize \(1024\)/);
    noBuf.destroy();
  });
});

describe('bad jobs give specific errors', () => {
  const c = makeCase(8, 6, 'out-in', [2], [], 61);
  const job = () => toJob(c);
  const enc = () => device.createCommandEncoder();

  it('rejects wrong shapes, ranks, sizes, aliasing and missing features', () => {
    expect(() => kernels.encodeMerge(enc(), { ...job(), inFeatures: 0 })).toThrow(/inFeatures must be a positive integer/);
    expect(() => kernels.encodeMerge(enc(), { ...job(), outFeatures: 2.5 })).toThrow(/outFeatures must be/);
    const j = job();
    const lora = j.terms[0] as Extract<MergeTerm, { kind: 'lora' }>;
    expect(() => kernels.encodeMerge(enc(), { ...j, terms: [{ ...lora, rank: 0 }] })).toThrow(/term 0 rank/);
    expect(() => kernels.encodeMerge(enc(), { ...j, terms: [{ ...lora, rank: 3 }] })).toThrow(
      /term 0 LoRA down \[3, 8\] is 64 bytes, needs at least 96/,
    );
    expect(() => kernels.encodeMerge(enc(), { ...j, terms: [{ ...lora, scale: NaN }] })).toThrow(/non-finite scale/);
    expect(() => kernels.encodeMerge(enc(), { ...j, out: emptyLike(10) })).toThrow(/out is 40 bytes, needs at least 192/);
    expect(() => kernels.encodeMerge(enc(), { ...j, terms: [{ kind: 'dense', delta: j.out, scale: 1 }] })).toThrow(
      /reads the output buffer/,
    );
    expect(() => kernels.encodeMerge(enc(), { ...j, layout: 'rows' as WeightLayout })).toThrow(/unknown layout/);
    const notStorage = device.createBuffer({ size: 192, usage: 0x8 | 0x4 });
    owned.push(notStorage);
    expect(() => kernels.encodeMerge(enc(), { ...j, out: notStorage })).toThrow(/out lacks GPUBufferUsage.STORAGE/);
    if (!hasF16) {
      expect(() => kernels.encodeMerge(enc(), { ...j, dtype: 'f16' })).toThrow(/needs the device feature 'shader-f16'/);
    }
  });
});

describe('f16 storage', () => {
  it('derives the f16 shader from merge.wgsl (enable directive first)', () => {
    const src = shaderSource('f16');
    expect(src.startsWith('enable f16;\nalias S = f16;')).toBe(true);
    expect(shaderSource('f32')).toMatch(/^alias S = f32;/);
  });

  it('matches the reference on f16-rounded inputs', async (ctx) => {
    ctx.skip(!hasF16, 'adapter has no shader-f16 (SwiftShader has none); this runs on real GPUs only');
    for (const layout of ['out-in', 'in-out'] as const) {
      const c = makeCase(33, 17, layout, [8, 3], [0.5], 71);
      const job = toJob(c, 'f16');
      kernels.merge(job);
      const got = await readBack(job.out, 33 * 17, 'f16');
      const roundHalf = (x: number) => fromHalfArray(toHalfArray([x]))[0];
      const ref = reference(c, roundHalf);
      const gamma = (rankSum(c) + 8) * 2 ** -23;
      // Output rounding to f16 (2⁻¹¹ relative, 2⁻²⁴ absolute for subnormals) on top of the f32 bound.
      expect(worstRatio(got, ref, (e) => 2 ** -11 * Math.abs(ref.value[e]) + gamma * ref.mag[e] + 2 ** -24)).toBeLessThanOrEqual(1);
    }
  });
});

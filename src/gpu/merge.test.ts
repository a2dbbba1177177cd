// merge.wgsl against a CPU float64 reference, on Dawn + SwiftShader in Node (see node-gpu.ts for the driver setup).
// Cases, reference and the stated tolerance live in merge-check.ts (shared with the Chromium check): f32 error
// ≤ (Σ ranks + 8)·2⁻²³·(|W| + Σ|s|·Σ_k|B||A| + Σ|s_d||D|) per element.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acquireDevice } from './device.ts';
import {
  createMergeKernels,
  planChunks,
  planPasses,
  shaderSource,
  type MergeKernels,
  type MergeLimits,
  type MergeTerm,
  type WeightLayout,
} from './merge.ts';
import { createCaseRunner, makeCase, reference, STANDARD_CASES, tolerance, worstRatio, type HostCase } from './merge-check.ts';
import { createNodeGpu } from './node-gpu.ts';

let device: GPUDevice;
let hasF16 = false;
let kernels: MergeKernels;
let runner: ReturnType<typeof createCaseRunner>;
const gpuErrors: string[] = []; // validation errors no scope caught: any is a bug in merge.ts

beforeAll(async () => {
  ({ device, hasF16 } = await acquireDevice(await createNodeGpu(), { onUncapturedError: (e) => gpuErrors.push(e.message) }));
  kernels = createMergeKernels(device);
  runner = createCaseRunner(device);
});

afterEach(async () => {
  await device.queue.onSubmittedWorkDone();
  expect(gpuErrors).toEqual([]);
});

afterAll(() => {
  kernels?.destroy();
  runner?.destroy();
  device?.destroy();
});

const toJob = (...args: Parameters<typeof runner.toJob>) => runner.toJob(...args);
const readBack = (...args: Parameters<typeof runner.readBack>) => runner.readBack(...args);

async function runAndCheck(c: HostCase, k: MergeKernels = kernels): Promise<void> {
  const { worst, baseIntact } = await runner.check(k, c);
  expect(worst).toBeLessThanOrEqual(1);
  expect(baseIntact).toBe(true); // base is never written
}

describe('merge kernel vs float64 reference', () => {
  for (const { name, make } of STANDARD_CASES) it(name, () => runAndCheck(make()));

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
    const { ref, tol } = tolerance(c);
    expect(worstRatio(got, ref, tol)).toBeLessThanOrEqual(1);
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
      const { ref, tol } = tolerance(c);
      expect(worstRatio(got, ref, tol)).toBeLessThanOrEqual(1);
    }
    const after = kernels.stats();
    expect(after.uniformBuffers).toBe(Math.max(before.uniformBuffers, 1));
    expect(after.dispatches - before.dispatches).toBe(4);
  });
});

describe('encodeMerge with a caller-owned encoder', () => {
  it('keeps its parameter slots while merge() runs in between, until recycle()', async () => {
    const a = makeCase(12, 10, 'out-in', [3], [], 81);
    const b = makeCase(12, 10, 'in-out', [5, 2], [0.5], 82);
    const jobA = toJob(a);
    const jobB = toJob(b);
    const encoder = device.createCommandEncoder();
    kernels.encodeMerge(encoder, jobA); // parameters written now, used when `encoder` is submitted
    kernels.merge(jobB); // these must not reuse A's slot...
    kernels.merge(jobB); // ...nor this one, after the first merge() freed its own
    device.queue.submit([encoder.finish()]);
    kernels.recycle();
    for (const [c, job] of [[a, jobA], [b, jobB]] as const) {
      const { ref, tol } = tolerance(c);
      expect(worstRatio(await readBack(job.out, 120), ref, tol)).toBeLessThanOrEqual(1);
    }
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

  it('splits an output written at an unaligned element offset (stacked weight sets)', async () => {
    const limits = { maxStorageBufferBindingSize: 600, maxBufferSize: 1 << 30, maxComputeWorkgroupsPerDimension: 65535 };
    for (const ch of planChunks(17 * 33, 4, limits, 256, 17 * 33 + 3)) {
      expect(ch.outWindowOffset % 256).toBe(0);
      expect(ch.outWindowSize).toBeLessThanOrEqual(600);
      expect(ch.outWindowOffset + ch.outWinOff * 4).toBe((17 * 33 + 3 + ch.first) * 4);
    }
    const k = small({ maxStorageBufferBindingSize: 600 });
    const { worst, baseIntact } = await runner.check(k, { ...makeCase(17, 33, 'out-in', [4, 3], [0.5], 33), outOffset: 17 * 33 + 3 });
    expect(worst).toBeLessThanOrEqual(1);
    expect(baseIntact).toBe(true);
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
    expect(() => kernels.encodeMerge(enc(), { ...j, out: runner.empty(10) })).toThrow(/out is 40 bytes, needs at least 192/);
    expect(() => kernels.encodeMerge(enc(), { ...j, terms: [{ kind: 'dense', delta: j.out, scale: 1 }] })).toThrow(
      /reads the output buffer/,
    );
    expect(() => kernels.encodeMerge(enc(), { ...j, layout: 'rows' as WeightLayout })).toThrow(/unknown layout/);
    expect(() => kernels.encodeMerge(enc(), { ...j, outOffset: 1 })).toThrow(/out \(W' at element 1\) is 192 bytes, needs at least 196/);
    expect(() => kernels.encodeMerge(enc(), { ...j, outOffset: -2 })).toThrow(/outOffset must be a non-negative integer/);
    expect(() => kernels.encodeMerge(enc(), { ...j, out: j.base, outOffset: 4 })).toThrow(/in-place merge .* cannot have an outOffset/);
    const notStorage = device.createBuffer({ size: 192, usage: 0x8 | 0x4 });
    expect(() => kernels.encodeMerge(enc(), { ...j, out: notStorage })).toThrow(/out lacks GPUBufferUsage.STORAGE/);
    notStorage.destroy();
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
      const { worst, baseIntact } = await runner.check(kernels, makeCase(33, 17, layout, [8, 3], [0.5], 71), 'f16');
      expect(worst).toBeLessThanOrEqual(1);
      expect(baseIntact).toBe(true);
    }
  });
});

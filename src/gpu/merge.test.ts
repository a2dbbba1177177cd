// merge.wgsl against a CPU float64 reference, on Dawn + SwiftShader in Node (see node-gpu.ts for the driver setup).
// Cases, reference and the stated tolerance live in merge-check.ts (shared with the Chromium check): f32 error
// ≤ E = (Σ ranks + 8)·2⁻²³·(|W| + Σ|s|·Σ_k|B||A| + Σ|s_d||D|) per element; an f16 W' adds one binary16 ulp of the
// result (WGSL's pack2x16float may round either way). Every case also checks, bit for bit, that the base buffer and
// the output buffer outside W' (the other half of a shared f16 word included) are unchanged.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { floatToHalf } from '../lora/float16.ts';
import { acquireDevice } from './device.ts';
import { bytesPerElement, windowOf, type ElementType } from './element-type.ts';
import { createMergeKernels, planChunks, planPasses, type MergeJob, type MergeKernels, type MergeLimits, type MergeTerm, type WeightLayout } from './merge.ts';
import { createCaseRunner, makeCase, makeFlatCase, reference, STANDARD_CASES, tolerance, worstRatio, type HostCase } from './merge-check.ts';
import { createNodeGpu } from './node-gpu.ts';

let device: GPUDevice;
let kernels: MergeKernels;
let runner: ReturnType<typeof createCaseRunner>;
const gpuErrors: string[] = []; // validation errors no scope caught: any is a bug in merge.ts

beforeAll(async () => {
  ({ device } = await acquireDevice(await createNodeGpu(), { onUncapturedError: (e) => gpuErrors.push(e.message) }));
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

type MatrixJob = Extract<MergeJob, { layout: WeightLayout }>;
const toJob = (c: HostCase, out?: GPUBuffer) => runner.toJob(c, out) as MatrixJob;
const readBack = (...args: Parameters<typeof runner.readBack>) => runner.readBack(...args);

async function runAndCheck(c: HostCase, k: MergeKernels = kernels): Promise<void> {
  const { worst, baseIntact, othersIntact } = await runner.check(k, c);
  expect(worst).toBeLessThanOrEqual(1);
  expect(baseIntact).toBe(true); // base is never written
  expect(othersIntact).toBe(true); // nor anything of `out` outside W'
}

const LIMITS: MergeLimits = { maxStorageBufferBindingSize: 600, maxBufferSize: 1 << 30, maxComputeWorkgroupsPerDimension: 65535 };

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

  it('five LoRAs and two dense deltas (three passes per chunk), f32 and f16', async () => {
    const c = makeCase(24, 19, 'in-out', [2, 5, 3, 7, 1], [0.5, -2], 77);
    expect(planPasses(toJob(c).terms)).toHaveLength(3);
    await runAndCheck(c);
    await runAndCheck({ ...c, dtype: 'f16', outOffset: 3 });
  });

  for (const dtype of ['f32', 'f16'] as const) {
    it(`no terms or only zero scales copy base bit for bit (${dtype})`, async () => {
      const c: HostCase = { ...makeCase(9, 11, 'out-in', [4], [1], 3), dtype, outOffset: 1 };
      c.terms.forEach((t) => (t.scale = 0));
      const job = toJob(c);
      const bits = (values: ArrayLike<number>) => Array.from(values, (v) => (dtype === 'f16' ? floatToHalf(v) : v));
      kernels.merge(job);
      expect(bits(await readBack(job.out, 99, dtype, 1))).toEqual(bits(c.base));
      kernels.merge({ ...job, terms: [] });
      expect(bits(await readBack(job.out, 99, dtype, 1))).toEqual(bits(c.base));
    });
  }

  it('merges in place when base and out are the same buffer (f32)', () =>
    runAndCheck({ ...makeCase(13, 21, 'out-in', [4, 8, 2], [0.5], 11), inPlace: true }));

  it('θ_pos and θ_neg of an odd-sized f16 weight into one stacked buffer, in one submit, both halves right', async () => {
    const c: HostCase = { ...makeCase(7, 5, 'in-out', [3], [1], 12), dtype: 'f16' }; // 35 elements: θ_neg starts mid-word
    const n = 35;
    const stacked = runner.empty(2 * n, 'f16');
    const pos = toJob(c, stacked);
    const negCase: HostCase = { ...c, terms: c.terms.map((t) => ({ ...t, scale: t.kind === 'dense' ? 1.5 : -1 })) };
    const neg = { ...toJob(negCase, stacked), outOffset: n };
    kernels.merge([pos, neg]);
    for (const [k, hc] of [[0, c], [1, negCase]] as const) {
      const { ref, tol } = tolerance(hc);
      expect(worstRatio(await readBack(stacked, n, 'f16', k * n), ref, tol)).toBeLessThanOrEqual(1);
    }
  });

  it('an f16 W\' past the binary16 range is ±Inf (as floatToHalf rounds it), not NaN', async () => {
    const c: HostCase = { ...makeFlatCase([4], 'f16', [{ scale: 1, dtype: 'f32' }], 13) };
    c.base.set([60000, -60000, 30000, 65504]);
    (c.terms[0] as { delta: Float32Array }).delta.set([6000, -6000, 30000, 15]); // 66000, -66000, 60000, 65519
    const job = runner.toJob(c);
    kernels.merge(job);
    expect(Array.from(await readBack(job.out, 4, 'f16'))).toEqual([Infinity, -Infinity, 60000, 65504]);
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

  for (const [type, offset] of [['f32', 0], ['f16', 0], ['f16', 17 * 33 + 3], ['f32', 17 * 33 + 3]] as [ElementType, number][]) {
    it(`plans aligned windows of whole words that cover every element once (${type}, tensor at element ${offset})`, () => {
      const region = { type, offset };
      const b = bytesPerElement(type);
      const chunks = planChunks(17 * 33, region, [{ type: 'f32', offset: 5 }], LIMITS, 256);
      expect(chunks.length).toBeGreaterThan(1);
      let next = 0;
      for (const ch of chunks) {
        expect(ch.first).toBe(next);
        for (const r of [region, { type: 'f32' as const, offset: 5 }]) {
          const w = windowOf(r, ch.first, ch.count, 256);
          const bytes = bytesPerElement(r.type);
          expect(w.offset % 256).toBe(0);
          expect(w.size % 4).toBe(0);
          expect(w.size).toBeLessThanOrEqual(600);
          expect(w.offset + w.index * bytes).toBe((r.offset + ch.first) * bytes);
          expect(w.offset + w.size).toBeGreaterThanOrEqual((r.offset + ch.first + ch.count) * bytes);
        }
        const firstWord = Math.floor(((offset + ch.first) * b) / 4);
        const lastWord = Math.floor(((offset + ch.first + ch.count) * b - 1) / 4);
        expect(ch.threads).toBe(lastWord - firstWord + 1); // one thread per word of W' the chunk touches
        next += ch.count;
      }
      expect(next).toBe(17 * 33);
    });
  }

  it('splits by maxStorageBufferBindingSize (unaligned chunk starts), both layouts, f32 and f16', async () => {
    const k = small({ maxStorageBufferBindingSize: 600 });
    for (const layout of ['out-in', 'in-out'] as const) {
      const c = makeCase(17, 33, layout, [4, 3], [0.5], 31); // factors fit 600 B
      await runAndCheck(c, k);
      await runAndCheck({ ...c, dtype: 'f16' }, k);
    }
    k.destroy();
  });

  it('splits f16 and f32 tensors at odd element offsets (stacked weight sets, tensors inside shared buffers)', async () => {
    const k = small({ maxStorageBufferBindingSize: 600 });
    const c = makeCase(17, 33, 'out-in', [4, 3], [0.5], 33);
    for (const dtype of ['f16', 'f32'] as const) {
      for (const denseType of ['f16', 'f32'] as const) {
        const stacked: HostCase = { ...c, dtype, outOffset: 17 * 33 + 3, baseOffset: 11 };
        await runAndCheck({ ...stacked, terms: c.terms.map((t) => (t.kind === 'dense' ? { ...t, dtype: denseType, offset: 1 } : t)) }, k);
      }
    }
    await runAndCheck({ ...c, dtype: 'f16', inPlace: true, baseOffset: 301 }, k);
    await runAndCheck({ ...makeFlatCase([3, 5, 3, 3, 3], 'f16', [{ scale: -1, dtype: 'f32' }], 34), outOffset: 7 }, k);
    k.destroy();
  });

  it('folds dispatches into 2D and splits by maxComputeWorkgroupsPerDimension', async () => {
    const limits = { ...LIMITS, maxComputeWorkgroupsPerDimension: 2, maxStorageBufferBindingSize: 1 << 20 };
    const f32 = { type: 'f32', offset: 0 } as const;
    expect(planChunks(64 * 48, f32, [f32], limits, 256).map((c) => [c.count, c.gridX, c.gridY])).toEqual([
      [1024, 2, 2],
      [1024, 2, 2],
      [1024, 2, 2],
    ]);
    expect(planChunks(700, f32, [f32], limits, 256).map((c) => [c.gridX, c.gridY])).toEqual([[2, 2]]); // 3 groups: 2x2
    // f16: a thread per word of two elements; at odd element 1 each 1024-element chunk touches 513 words.
    const f16Chunks = planChunks(64 * 48, { type: 'f16', offset: 1 }, [f32], limits, 256);
    expect(f16Chunks.map((c) => [c.count, c.threads, c.gridX, c.gridY])).toEqual([
      [1024, 513, 2, 2],
      [1024, 513, 2, 2],
      [1024, 513, 2, 2],
    ]);
    const k = small({ maxComputeWorkgroupsPerDimension: 2 });
    await runAndCheck(makeCase(64, 48, 'in-out', [8, 3], [1.5], 41), k);
    await runAndCheck(makeCase(35, 20, 'out-in', [5], [], 42), k);
    await runAndCheck({ ...makeCase(64, 48, 'out-in', [8, 3], [1.5], 43), dtype: 'f16', outOffset: 1 }, k);
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
  const encode = (j: unknown) => () => kernels.encodeMerge(enc(), j as MergeJob);

  it('rejects wrong shapes, ranks, sizes, aliasing and types', () => {
    expect(encode({ ...job(), inFeatures: 0 })).toThrow(/inFeatures must be a positive integer/);
    expect(encode({ ...job(), outFeatures: 2.5 })).toThrow(/outFeatures must be/);
    const j = job();
    const lora = j.terms[0] as Extract<MergeTerm, { kind: 'lora' }>;
    expect(encode({ ...j, terms: [{ ...lora, rank: 0 }] })).toThrow(/term 0 rank/);
    expect(encode({ ...j, terms: [{ ...lora, rank: 3 }] })).toThrow(/term 0 LoRA down \[3, 8\] is 64 bytes, needs at least 96/);
    expect(encode({ ...j, terms: [{ ...lora, scale: NaN }] })).toThrow(/non-finite scale/);
    expect(encode({ ...j, out: runner.empty(10) })).toThrow(/out is 40 bytes, needs at least 192/);
    expect(encode({ ...j, terms: [{ kind: 'dense', delta: j.out, scale: 1 }] })).toThrow(/reads the output buffer/);
    expect(encode({ ...j, layout: 'rows' })).toThrow(/unknown layout/);
    expect(encode({ ...j, outOffset: 1, out: runner.empty(48) })).toThrow(/out \(W' at element 1\) is 192 bytes, needs at least 196/);
    expect(encode({ ...j, outOffset: -2 })).toThrow(/outOffset must be a non-negative integer/);
    expect(encode({ ...j, baseOffset: 0.5 })).toThrow(/baseOffset must be a non-negative integer/);
    expect(encode({ ...j, out: j.base, outOffset: 4 })).toThrow(/base and out are one buffer at different offsets \(0, 4\)/);
    expect(encode({ ...j, dtype: 'bf16' })).toThrow(/dtype must be 'f32' or 'f16', got bf16/);
    const notStorage = device.createBuffer({ size: 192, usage: 0x8 | 0x4 });
    expect(encode({ ...j, out: notStorage })).toThrow(/out lacks GPUBufferUsage.STORAGE/);
    notStorage.destroy();
  });

  it('rejects bad dense terms and LoRA terms on a tensor given only by its element count', () => {
    const j = job();
    const delta = runner.empty(48, 'f16'); // 96 bytes: enough for 48 f16 elements, not for f32 or an offset
    const dense = { kind: 'dense', delta, scale: 1 } as const;
    expect(encode({ ...j, dtype: 'f16', terms: [dense] })).not.toThrow();
    expect(encode({ ...j, terms: [dense] })).toThrow(/term 0 \(dense delta\) is 96 bytes, needs at least 192/);
    expect(encode({ ...j, dtype: 'f16', terms: [{ ...dense, offset: 2 }] })).toThrow(/term 0 \(dense delta\) is 96 bytes, needs at least 100/);
    expect(encode({ ...j, terms: [{ ...dense, dtype: 'f8' }] })).toThrow(/term 0 \(dense\) dtype must be 'f32' or 'f16', got f8/);
    expect(encode({ ...j, terms: [{ ...dense, dtype: 'f16', offset: -1 }] })).toThrow(/term 0 \(dense\) offset must be a non-negative integer/);
    const flat = { base: j.base, out: j.out, elements: 48, terms: j.terms };
    expect(encode(flat)).toThrow(/term 0 \(LoRA\) needs W as a matrix \(inFeatures, outFeatures, layout\); this job gives only elements \(48\)/);
    expect(encode({ ...flat, terms: [], elements: 0 })).toThrow(/elements must be a positive integer, got 0/);
    expect(encode({ ...flat, terms: [], inFeatures: 8 })).toThrow(/as elements or as inFeatures\/outFeatures\/layout, not both \(inFeatures given\)/);
    expect(encode({ ...flat, terms: [{ ...dense, dtype: 'f16' }] })).not.toThrow();
  });
});

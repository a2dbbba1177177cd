// The worker's WebGPU path (resident weights merged by our kernels, fed with Tensor.fromGpuBuffer; the GPU-resident
// loop) against the CPU path (CPU merge, CPU loop) on onnxruntime-node, with the tiny fixture model, in Node:
// onnxruntime-web's native WebGPU EP on Dawn + SwiftShader (node-webgpu-ort.ts). The fixture's random UNet with few
// cosine-schedule steps gives final samples up to ~1e5, so the tolerance is relative: max|a − b| ≤ 1e-4·max|a| (the
// UNet runs on different EPs, f32 kernels summing in different orders; CPU vs WASM differ by ~2e-6 relative).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ortNode from 'onnxruntime-node';
import { createModelEngine } from '../pipelines/index.ts';
import type { Engine } from './engine.ts';
import { nodeWebGpuOrt } from '../worker/node-webgpu-ort.ts';
import { buildTinyModel } from '../worker/tiny-model.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import { memorySource } from '../model/source/memory.ts';

const { manifest, files } = buildTinyModel();
const params: GenerateParams = { ...manifest.defaults, steps: 3 };
// One step where the test is about scheduling, LoRA swaps or merges rather than the sampler: each SwiftShader UNet
// call costs seconds.
const oneStep: GenerateParams = { ...params, steps: 1 };
const relDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0) / a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
let cpu: Engine;
let gpu: Engine;
let device: GPUDevice;
const gpuErrors: string[] = [];

beforeAll(async () => {
  const web = await nodeWebGpuOrt({ onUncapturedError: (e) => gpuErrors.push(e.message), baselineWasm: true }); // ORT's session in 2 s, not 2 min
  device = web.device;
  cpu = await createModelEngine(ortNode, memorySource(manifest, files));
  gpu = await createModelEngine(web.ort, memorySource(manifest, files), { sessionOptions: { executionProviders: [{ name: 'webgpu', device } as never] }, gpu: { device } });
});
afterAll(async () => {
  await gpu?.release();
  device?.destroy();
});

describe('WebGPU path vs CPU path (tiny model, Node)', () => {
  // Euler ancestral is the stochastic case: both loops must draw the same noise at the same steps.
  // UniPC over 3 steps has a linear plan but reports no x̂₀: its GPU previews show x_{k+1}, like its CPU previews.
  const cases = [['ddim', params.steps, 'gpu'], ['dpm++2m', params.steps, 'gpu'], ['unipc', 7, 'cpu'], ['unipc', 3, 'gpu'], ['euler-ancestral', 3, 'gpu']] as const;
  for (const [scheduler, steps, loop] of cases) {
    it(`${scheduler}, ${steps} steps: same images and previews; ${loop === 'cpu' ? 'CPU loop fallback' : 'GPU loop, one read-back per image'}`, async () => {
      // UniPC over 7 steps or more reaches back further than a linear plan holds (its corrector recursion), so it falls back.
      const p = { ...params, scheduler, alpha: 0.5, steps };
      // Previews after every step: the CPU loop's come from the scheduler's own x̂₀, the GPU loop's from the plan's
      // x̂₀ coefficients in sampler.wgsl's `preview` kernel; they must agree as the images do.
      const recorder = () => {
        const shown: Float32Array[] = [];
        return { shown, hooks: { wantPreview: () => true, onPreview: (_: number, m: Map<string, { chw: Float32Array }>) => shown.push(m.get('baseline')!.chw, m.get('npo')!.chw) } };
      };
      const [ra, rb] = [recorder(), recorder()];
      const [a, b] = [await cpu.generate(p, ['baseline', 'npo'], ra.hooks), await gpu.generate(p, ['baseline', 'npo'], rb.hooks)];
      for (const kind of ['baseline', 'npo'] as const) expect(relDiff(a.images.get(kind)!, b.images.get(kind)!)).toBeLessThan(1e-4);
      expect(ra.shown.length).toBe(2 * (p.steps - 1)); // none after the last step: the image itself follows
      expect(rb.shown.length).toBe(ra.shown.length);
      ra.shown.forEach((preview, i) => expect(relDiff(preview, rb.shown[i]), `preview ${i}`).toBeLessThan(1e-4));
      const stats = gpu.stats();
      expect(stats.loop).toBe(loop);
      // One read-back per image, and one per image for each preview (the page asked for one after every step).
      if (stats.loop === 'gpu') expect(stats.readBacks).toBe(2 + 2 * stats.previews);
      expect(stats.unetCalls).toBe(p.steps); // θ_pos and θ_neg in one call per step
      expect(stats.previews).toBe(p.steps - 1);
    });
  }
  it('two generations requested at once run one after the other and match the CPU path (at once, they blocked ORT-web)', async () => {
    const p = { ...oneStep, alpha: 0.5 };
    const both = await Promise.all([gpu.generate({ ...p, seed: 1 }, ['npo'], {}), gpu.generate({ ...p, seed: 2 }, ['npo'], {})]);
    for (const [i, seed] of [1, 2].entries()) {
      const reference = await cpu.generate({ ...p, seed }, ['npo'], {});
      expect(relDiff(reference.images.get('npo')!, both[i].images.get('npo')!)).toBeLessThan(1e-4);
    }
  });
  it('swapping δ for another LoRA (useLora) matches the CPU path and keeps the buffer count', async () => {
    const liveBefore = gpu.stats().liveBuffers;
    const other = files.get('eta.safetensors')!;
    cpu.useLora('delta', other);
    gpu.useLora('delta', other);
    const [a, b] = [await cpu.generate(oneStep, ['npo'], {}), await gpu.generate(oneStep, ['npo'], {})];
    expect(relDiff(a.images.get('npo')!, b.images.get('npo')!)).toBeLessThan(1e-4);
    expect(gpu.stats().liveBuffers).toBe(liveBefore);
    cpu.useLora('delta', undefined);
    gpu.useLora('delta', undefined);
  });
  it('moving α re-merges θ_neg only; ω re-merges nothing; buffers stay flat', async () => {
    await gpu.generate(oneStep, ['npo'], {});
    const before = gpu.stats();
    await gpu.generate({ ...oneStep, omega: 2 }, ['npo'], {});
    expect(gpu.stats().merge!.merges).toBe(before.merge!.merges);
    await gpu.generate({ ...oneStep, alpha: 0.3 }, ['npo'], {});
    const after = gpu.stats();
    expect(after.merge!.merges).toBe(before.merge!.merges + 1);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(gpuErrors).toEqual([]);
  });
});

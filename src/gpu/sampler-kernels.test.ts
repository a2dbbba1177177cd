// sampler.wgsl against the CPU reference of the same loop (combineCfg + applyLinearStep in float64), on Dawn +
// SwiftShader in Node, for real plans: DPM-Solver++ 2M (one step of history) and Euler ancestral (noise every step).
// Branch outputs are seeded random numbers standing in for UNet predictions; the kernel only combines them.
// Tolerance: 1e-5 relative to max|x| (f32 arithmetic over ≤ 2·ring + 3 terms per step, over 6 steps).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { combineCfg } from '../diffusion/cfg.ts';
import { downsampleBlocks } from '../diffusion/image.ts';
import { createGenerator } from '../diffusion/noise/index.ts';
import { createScheduler } from '../diffusion/schedulers/index.ts';
import { applyLinearStep, linearPlan, type LinearPlan } from '../diffusion/schedulers/linear-step.ts';
import { createWeightBuffer, readBuffer } from './buffers.ts';
import { acquireDevice } from './device.ts';
import { createNodeGpu } from './node-gpu.ts';
import { createParamSlots } from './param-slots.ts';
import { createSamplerKernels, type SamplerKernels } from './sampler-kernels.ts';

let device: GPUDevice;
let kernels: SamplerKernels;
const gpuErrors: string[] = [];
const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1 } as const;

beforeAll(async () => {
  ({ device } = await acquireDevice(await createNodeGpu(), { onUncapturedError: (e) => gpuErrors.push(e.message) }));
  kernels = createSamplerKernels(device);
});
afterAll(() => device?.destroy());

const floats = async (buffer: GPUBuffer, count: number, offset = 0) => new Float32Array(await readBuffer(device, buffer, count * 4, offset * 4));

async function runLoop(plan: LinearPlan, count: number, omega: number) {
  const ring = plan.history + 1;
  const random = createGenerator(11);
  const noiseStream = createGenerator(5);
  const x0 = random.randn(count);
  // The positive prediction sits at element 3·count of a batch-4 output, the negative at 0 of another buffer.
  const [posOffset, negOffset] = [3 * count, 0];
  const pos = createWeightBuffer(device, 4 * count * 4);
  const neg = createWeightBuffer(device, count * 4);
  const xs = createWeightBuffer(device, ring * count * 4);
  const eps = createWeightBuffer(device, ring * count * 4);
  const noise = createWeightBuffer(device, count * 4);
  const params = createParamSlots(device, 1);
  device.queue.writeBuffer(xs, 0, x0);
  const cpuX = [x0];
  const cpuEps: Float32Array[] = [];
  plan.steps.forEach((step, k) => {
    const [p, n] = [random.randn(count), random.randn(count)];
    device.queue.writeBuffer(pos, posOffset * 4, p);
    device.queue.writeBuffer(neg, negOffset * 4, n);
    let z: Float32Array | undefined;
    for (let d = 0; d < step.noiseDraws; d++) z = noiseStream.randn(count);
    if (z) device.queue.writeBuffer(noise, 0, z);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    kernels.encodeStep(pass, params, 0, { pos, posOffset, neg, negOffset, xs, eps, noise, count, slot: k % ring, ring, omega, sampleCoefs: step.sampleCoefs, outputCoefs: step.outputCoefs, noiseCoef: step.noiseCoef });
    pass.end();
    device.queue.submit([encoder.finish()]);
    cpuEps.push(combineCfg(p, n, omega));
    cpuX.push(applyLinearStep(step, cpuX, cpuEps, k, z));
  });
  const gpu = await floats(xs, count, (plan.steps.length % ring) * count);
  [pos, neg, xs, eps, noise, params.buffer].forEach((b) => b.destroy());
  const expected = cpuX[plan.steps.length];
  const scale = Math.max(...expected.map(Math.abs));
  return Math.max(...expected.map((v, i) => Math.abs(v - gpu[i]))) / scale;
}

describe('sampler.wgsl (Dawn/SwiftShader) vs the CPU loop', () => {
  it('DPM-Solver++ 2M, 6 steps, 1000 elements (not a multiple of the workgroup)', async () => {
    const plan = linearPlan(() => createScheduler('dpm++2m', SD), 6)!;
    expect(plan.history).toBe(1);
    expect(await runLoop(plan, 1000, 4)).toBeLessThan(1e-5);
  });
  it('Euler ancestral with its noise', async () => {
    expect(await runLoop(linearPlan(() => createScheduler('euler-ancestral', SD), 6)!, 777, 6.5)).toBeLessThan(1e-5);
  });
  it('preview: block means of a·x + b·ε (ε the CFG combine) and of x alone, shapes not multiples of the block', async () => {
    const [channels, height, width, factor, omega] = [3, 10, 14, 3, 2.5];
    const count = channels * height * width;
    const r = createGenerator(8);
    const [x, p, n] = [r.randn(count), r.randn(count), r.randn(count)];
    const xs = createWeightBuffer(device, 2 * count * 4);
    const pos = createWeightBuffer(device, 2 * count * 4);
    const neg = createWeightBuffer(device, count * 4);
    device.queue.writeBuffer(xs, count * 4, x);
    device.queue.writeBuffer(pos, count * 4, p);
    device.queue.writeBuffer(neg, 0, n);
    const small = channels * Math.floor(height / factor) * Math.floor(width / factor);
    const out = createWeightBuffer(device, 2 * small * 4);
    const params = createParamSlots(device, 2);
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const common = { pos, posOffset: count, neg, negOffset: 0, xs, xOffset: count, channels, height, width, factor, omega };
    kernels.encodePreview(pass, params, 0, { ...common, out, a: 0.7, b: -0.4 });
    const second = createWeightBuffer(device, small * 4);
    kernels.encodePreview(pass, params, 1, { ...common, out: second, a: 1, b: 0 });
    pass.end();
    device.queue.submit([encoder.finish()]);
    const guided = combineCfg(p, n, omega);
    const want = downsampleBlocks(x.map((v, i) => 0.7 * v - 0.4 * guided[i]), channels, height, width, factor);
    const got = await floats(out, small);
    const scale = Math.max(...want.map(Math.abs));
    expect(Math.max(...want.map((v, i) => Math.abs(v - got[i]))) / scale).toBeLessThan(1e-5);
    const plain = downsampleBlocks(x, channels, height, width, factor);
    const gotPlain = await floats(second, small);
    expect(Math.max(...plain.map((v, i) => Math.abs(v - gotPlain[i])))).toBeLessThan(1e-5);
    expect(() => kernels.encodePreview(pass, params, 0, { ...common, out, a: 1, b: 0, factor: 0 })).toThrow(/preview factor 0/);
    [xs, pos, neg, out, second, params.buffer].forEach((b) => b.destroy());
  });
  it('reported no uncaptured GPU errors', async () => {
    await device.queue.onSubmittedWorkDone();
    expect(gpuErrors).toEqual([]);
  });
});

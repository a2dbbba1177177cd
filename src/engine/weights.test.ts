// θ_pos / θ_neg as the engine feeds them (weights-cpu.ts on the CPU, weights-gpu.ts with our WGSL merge kernels on
// WebGPU), on the committed embedded UNet: whatever the mode (stacked sites, grouped calls for a dense η on non-site
// tensors), each sample of a mixed batch must equal the original graph run with that sample's weights baked in
// float64 (fed as inputs), on the same execution provider. Tolerance 1e-5 absolute on outputs
// of up to ~50: the merged weights differ from the baked ones by float32 rounding at most (the GPU merges in float32).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type * as OrtCommon from 'onnxruntime-common';
import { findLoraSites, type LoraSite } from '../onnx/lora-sites.ts';
import { inlineExternalData, readModel, readWeight, writeModel } from '../onnx/model-io.ts';
import { initializersToInputs } from '../onnx/passes/initializers-to-inputs.ts';
import { negativeId, POSITIVE } from '../worker/weight-set-ids.ts';
import { unetGraphFor } from './unet-graph.ts';
import { createCpuWeights, type UnetWeights } from './weights-cpu.ts';
import { createGpuWeights, denseKey, type GpuTensors } from './weights-gpu.ts';
import type { TensorOffset, TouchedTensor } from './offsets.ts';
import { toHalf } from '../pipelines/float-tensors.ts';
import { floatToHalf, halfToFloat } from '../lora/float16.ts';
import { loraDeltaWeight } from '../lora/formats.ts';
import type { LoraEntry, LoraSet } from '../lora/types.ts';
import { npoWorkerArrays } from '../model/fit.ts';
import { npoFootprint } from '../prepare/npo-footprint.ts';
import { nodeWebGpuOrt } from '../worker/node-webgpu-ort.ts';
import { createBufferTracker, type BufferTracker } from '../gpu/tracker.ts';

const dir = join(import.meta.dirname, '../../models');
const model = readModel(new Uint8Array(readFileSync(join(dir, 'unet.onnx'))));
const externals = new Map([['unet.onnx.data', new Uint8Array(readFileSync(join(dir, 'unet.onnx.data')))]]);
const initializers = new Map((model.graph!.initializer ?? []).map((t) => [t.name ?? '', t]));
const sites = findLoraSites(model);

/** A seeded offset of small values (a dense η or δ) for a tensor of n values. */
function offset(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.05);
}

let denseFiles = 0;
const dense = (values: Float32Array): TensorOffset => ({
  kind: 'dense',
  tensor: { file: `dense-${denseFiles++}`, offset: 0, byteLength: values.byteLength, bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength), dtype: 'F32', length: values.length },
});

/** A touched tensor with dense float32 offsets, and the values the baked reference adds. */
type Dense = TouchedTensor & { base: Float32Array; values: { eta?: Float32Array; delta?: Float32Array } };

function touched(name: string, roles: { eta?: number; delta?: number }): Dense {
  const { dims, data } = readWeight(initializers.get(name)!, externals);
  const values = { eta: roles.eta ? offset(data.length, roles.eta) : undefined, delta: roles.delta ? offset(data.length, roles.delta) : undefined };
  return { name, dims, length: data.length, base: data, type: 'float32', eta: values.eta && dense(values.eta), delta: values.delta && dense(values.delta), values, site: sites.find((s) => s.weightName === name) };
}

const inputs = (batch: number) => ({
  sample: new ort.Tensor('float32', offset(batch * 3 * 32 * 32, 7).map((v) => v * 40), [batch, 3, 32, 32]),
  timestep: new ort.Tensor('float32', new Float32Array(batch).fill(500), [batch]),
  encoder_hidden_states: new ort.Tensor('float32', offset(batch * 16 * 64, 9).map((v) => v * 40), [batch, 16, 64]),
});

type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;
interface Residency { name: string; ort: Ort; sessionOptions?: OrtCommon.InferenceSession.SessionOptions; weights(tensors: readonly TouchedTensor[], mode: ReturnType<typeof unetGraphFor>['mode']): Promise<UnetWeights> }

const cpu: Residency = { name: 'CPU (onnxruntime-node)', ort, weights: async (tensors, mode) => createCpuWeights(ort, tensors, mode) };
/** θ and dense offsets uploaded from the test's arrays (the engine streams them from the model's files). */
const fromMemory = (): GpuTensors => {
  const upload = (data: ArrayBufferView, label: string) => tracker.create('test', data.byteLength, { data, label });
  return {
    theta: async (tensors) => new Map(tensors.map((t) => [t.name, upload(t.base!, t.name)])),
    dense: async (list) => new Map(list.map((d) => [denseKey(d), upload(d.bytes!, d.file)])),
  };
};
let gpu: Residency;
let tracker: BufferTracker;
let device: GPUDevice;
const gpuErrors: string[] = [];
beforeAll(async () => {
  const web = await nodeWebGpuOrt({ onUncapturedError: (e) => gpuErrors.push(e.message), baselineWasm: true });
  device = web.device;
  tracker = createBufferTracker(device);
  gpu = { name: 'WebGPU (our merge kernels, onnxruntime-web on Dawn)', ort: web.ort, sessionOptions: { executionProviders: [{ name: 'webgpu', device } as never] }, weights: (tensors, mode) => createGpuWeights(web.ort, device, tracker, tensors, mode, fromMemory()) };
});
afterAll(() => device?.destroy());

async function runMixed(r: Residency, tensors: readonly TouchedTensor[], ids: string[]) {
  const graph = unetGraphFor(model, tensors);
  const session = await r.ort.InferenceSession.create(writeModel(graph.model), { ...r.sessionOptions, externalData: [...externals].map(([path, data]) => ({ path, data })) });
  const weights = await r.weights(tensors, graph.mode);
  const size = 3 * 32 * 32;
  const result = new Float32Array(ids.length * size);
  const all = inputs(ids.length);
  const calls = await weights.callsFor(ids);
  for (const call of calls) {
    const pick = (t: ort.Tensor, per: number, dims: number[]) => new r.ort.Tensor('float32', Float32Array.from(call.samples.flatMap((s) => [...(t.data as Float32Array).subarray(s * per, (s + 1) * per)])), [call.samples.length, ...dims]);
    const out = await session.run({ ...call.feeds, sample: pick(all.sample, size, [3, 32, 32]), timestep: pick(all.timestep, 1, []), encoder_hidden_states: pick(all.encoder_hidden_states, 16 * 64, [16, 64]) });
    call.samples.forEach((s, i) => result.set((out.out_sample.data as Float32Array).subarray(i * size, (i + 1) * size), s * size));
  }
  const resident = weights.residentBytes();
  weights.release();
  await session.release();
  return { mode: graph.mode, calls: calls.length, result, size, resident };
}

/**
 * The same EP on the baked weights θ + α·η + β·δ (float64 sums), fed as inputs of one session per test: only the
 * merge can differ (WebGPU and CPU EPs sum in different orders). `run` gives sample `sample` of a batch of `batch`.
 */
async function referenceSession(r: Residency, tensors: Dense[]) {
  const graph = initializersToInputs(inlineExternalData(model, externals), tensors.map((t) => t.name)).model;
  const session = await r.ort.InferenceSession.create(writeModel(graph), r.sessionOptions);
  const size = 3 * 32 * 32;
  return {
    async run(alpha: number, beta: number, sample: number, batch: number) {
      const baked = Object.fromEntries(tensors.map((t) => [t.name, new r.ort.Tensor('float32', t.base.map((v, i) => v + alpha * (t.values.eta?.[i] ?? 0) + beta * (t.values.delta?.[i] ?? 0)), t.dims)]));
      const feeds = Object.fromEntries(Object.entries(inputs(batch)).map(([k, t]) => [k, new r.ort.Tensor('float32', t.data as Float32Array, t.dims)]));
      const out = (await session.run({ ...feeds, ...baked })).out_sample.data as Float32Array;
      return out.slice(sample * size, (sample + 1) * size);
    },
    release: () => session.release(),
  };
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe.each([['CPU', () => cpu], ['WebGPU', () => gpu]] as const)('weight sets on %s (embedded UNet)', (_, residency) => {
  it('stacks Linear sites: one call serves θ_pos and θ_neg samples', async () => {
    const tensors = [touched(sites[0].weightName, { eta: 1, delta: 2 }), touched(sites[5].weightName, { delta: 3 })];
    const ids = [POSITIVE, negativeId(0.5, 1)];
    const { mode, calls, result, size } = await runMixed(residency(), tensors, ids);
    expect([mode, calls]).toEqual(['stacked', 1]);
    const reference = await referenceSession(residency(), tensors);
    expect(maxDiff(result.subarray(0, size), await reference.run(1, 0, 0, 2))).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(size), await reference.run(0.5, 1, 1, 2))).toBeLessThan(1e-5);
    await reference.release();
  });

  it('groups calls by weight set when a dense η touches convolutions and norms, and matches the baked weights', async () => {
    const convName = [...initializers.keys()].find((n) => n === 'conv_in.weight')!;
    expect(convName).toBeDefined();
    const tensors = [touched(convName, { eta: 4 }), touched(sites[1].weightName, { eta: 5, delta: 6 })];
    const ids = [POSITIVE, negativeId(0.5, 1), POSITIVE, negativeId(0.5, 1)];
    const { mode, calls, result, size } = await runMixed(residency(), tensors, ids);
    expect([mode, calls]).toEqual(['grouped', 2]);
    const reference = await referenceSession(residency(), tensors);
    const pos = await reference.run(1, 0, 0, 4);
    const neg = await reference.run(0.5, 1, 1, 4);
    expect(maxDiff(result.subarray(0, size), pos)).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(size, 2 * size), neg)).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(2 * size, 3 * size), await reference.run(1, 0, 2, 4))).toBeLessThan(1e-5);
    await reference.release();
    // The NPO image really differs from the baseline: the test would not notice a θ_neg that stayed θ_pos otherwise.
    expect(maxDiff(pos, neg)).toBeGreaterThan(1e-3);
  });

  it('keeps one copy where θ_neg equals θ_pos (α = 1 and no δ on that tensor)', async () => {
    const conv = touched('conv_in.weight', { eta: 4 });
    const site = touched(sites[2].weightName, { delta: 7 });
    const { mode, resident } = await runMixed(residency(), [conv, site], [POSITIVE, negativeId(1, 1)]);
    expect(mode).toBe('grouped');
    // CPU: θ_pos of the η tensor (the δ site's θ_pos is θ's own values) plus θ_neg of the δ site only. GPU: θ_pos of
    // both (θ lives on the GPU only as θ_pos) plus θ_neg of the δ site only.
    const cpuBytes = 4 * (conv.base.length + site.base.length);
    expect(resident).toBe(residency() === cpu ? cpuBytes : cpuBytes + 4 * site.base.length);
  });

  it('makes a LoRA δ per tensor when merging; resident = 2 × touched × element bytes, the fit check\'s formula', async () => {
    const chosen = [sites[0], sites[3], sites[5]];
    const entry = (site: LoraSite, seed: number): LoraEntry => ({ rank: 2, scale: 0.5, inFeatures: site.inFeatures, outFeatures: site.outFeatures, down: offset(2 * site.inFeatures, seed).map((v) => v * 20), up: offset(2 * site.outFeatures, seed + 1).map((v) => v * 20) });
    const set = { format: 'diffusers', entries: new Map(chosen.map((site, i) => [site.modulePath, entry(site, 10 + i)])), skipped: [], metadata: {} } as LoraSet;
    const lora: TouchedTensor[] = chosen.map((site) => ({ ...touched(site.weightName, {}), delta: { kind: 'lora', terms: [{ entry: set.entries.get(site.modulePath)!, scale: 1 }], layout: site.layout } }));
    const baked = chosen.map((site, i) => ({ ...lora[i], values: { delta: loraDeltaWeight(set.entries.get(site.modulePath)!, site.layout) } })) as Dense[];
    const { mode, result, size, resident } = await runMixed(residency(), lora, [POSITIVE, negativeId(1, 1.5)]);
    expect(mode).toBe('stacked');
    const reference = await referenceSession(residency(), baked);
    expect(maxDiff(result.subarray(0, size), await reference.run(1, 0, 0, 2))).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(size), await reference.run(1, 1.5, 1, 2))).toBeLessThan(1e-5);
    await reference.release();
    // Independently: the sites' shapes from the graph, against what the manifest's footprint makes the fit check count.
    const touchedElements = chosen.reduce((n, site) => n + site.dims.reduce((a, b) => a * b, 1), 0);
    expect(resident).toBe(2 * touchedElements * 4);
    expect(npoWorkerArrays(npoFootprint(model, { eta: [], delta: [set] }, 4)!).sets).toBe(resident);
  });

  it('ORT sees no GPU validation error', () => expect(gpuErrors).toEqual([]));
});

describe('CPU weight sets in float16', () => {
  it('keep float16 weights float16: the stacked input is half(θ + α·η + β·δ) from θ\'s own bits', async () => {
    const site = sites[4];
    const n = site.dims.reduce((a, b) => a * b, 1);
    const theta = offset(n, 21).map((v) => v * 40);
    const eta = offset(n, 22);
    const delta = offset(n, 23);
    const base = toHalf(theta);
    const t: TouchedTensor = { name: site.weightName, dims: site.dims, length: n, base, type: 'float16', site, eta: dense(eta), delta: dense(delta) };
    const feeder = createCpuWeights(ort, [t], 'stacked');
    const input = (await feeder.callsFor([POSITIVE, negativeId(0.5, 2)]))[0].feeds[site.weightName];
    expect(input.type).toBe('float16');
    const values = input.data as Uint16Array;
    const expected = (alpha: number, beta: number) => Uint16Array.from({ length: n }, (_, i) => floatToHalf(halfToFloat(base[i]) + alpha * eta[i] + beta * delta[i]));
    expect(values.subarray(0, n)).toEqual(expected(1, 0));
    expect(values.subarray(n)).toEqual(expected(0.5, 2));
    expect(feeder.residentBytes()).toBe(2 * n * 2);
  });
});

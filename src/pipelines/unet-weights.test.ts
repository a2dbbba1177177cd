// θ_pos / θ_neg feeding for real-model UNets (unet-weights.ts), on the committed embedded UNet in onnxruntime-node:
// whatever the mode (stacked sites, grouped calls for a dense η on non-site tensors), each sample of a mixed batch
// must equal the original graph run with that sample's weights baked into its initializers (tolerance 1e-5).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { findLoraSites, type LoraSite } from '../onnx/lora-sites.ts';
import { inlineExternalData, readModel, readWeight, writeModel } from '../onnx/model-io.ts';
import { makeTensor } from '../onnx/tensor.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { negativeId, POSITIVE } from '../worker/weight-set-ids.ts';
import { createWeightFeeder, unetGraphFor, type TouchedTensor } from './unet-weights.ts';
import { toHalf } from './float-tensors.ts';
import { floatToHalf, halfToFloat } from '../lora/float16.ts';
import { loraDeltaWeight } from '../lora/formats.ts';
import type { LoraEntry, LoraSet } from '../lora/types.ts';
import { npoWorkerArrays } from '../model/fit.ts';
import { npoFootprint } from '../prepare/npo-footprint.ts';

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

/** A touched tensor with dense float32 offsets, as these tests build them (the baked reference reads them directly). */
type Dense = TouchedTensor & { base: Float32Array; eta?: Float32Array; delta?: Float32Array };

function touched(name: string, roles: { eta?: number; delta?: number }): Dense {
  const { dims, data } = readWeight(initializers.get(name)!, externals);
  return { name, dims, base: data, eta: roles.eta ? offset(data.length, roles.eta) : undefined, delta: roles.delta ? offset(data.length, roles.delta) : undefined, site: sites.find((s) => s.weightName === name) };
}

/** The export with these tensors replaced by θ + α·η + β·δ: what one sample on that weight set must see. */
async function bakedSession(tensors: Dense[], alpha: number, beta: number) {
  const inline = inlineExternalData(model, externals);
  const merged = new Map(tensors.map((t) => [t.name, t.base.map((v, i) => v + alpha * (t.eta?.[i] ?? 0) + beta * (t.delta?.[i] ?? 0))]));
  const graph = { ...inline.graph!, initializer: inline.graph!.initializer!.map((t) => (merged.has(t.name!) ? makeTensor(t.name!, t.dims!.map(Number), merged.get(t.name!)!) : t)) };
  return ort.InferenceSession.create(writeModel({ ...inline, graph } as ModelProto));
}

const inputs = (batch: number) => ({
  sample: new ort.Tensor('float32', offset(batch * 3 * 32 * 32, 7).map((v) => v * 40), [batch, 3, 32, 32]),
  timestep: new ort.Tensor('float32', new Float32Array(batch).fill(500), [batch]),
  encoder_hidden_states: new ort.Tensor('float32', offset(batch * 16 * 64, 9).map((v) => v * 40), [batch, 16, 64]),
});

async function runMixed(tensors: readonly TouchedTensor[], ids: string[]) {
  const graph = unetGraphFor(model, tensors);
  const session = await ort.InferenceSession.create(writeModel(graph.model), { externalData: [...externals].map(([path, data]) => ({ path, data })) });
  const feeder = createWeightFeeder(ort, tensors, graph.mode);
  const size = 3 * 32 * 32;
  const result = new Float32Array(ids.length * size);
  const all = inputs(ids.length);
  const calls = feeder.callsFor(ids);
  for (const call of calls) {
    const pick = (t: ort.Tensor, per: number, dims: number[]) => new ort.Tensor('float32', Float32Array.from(call.samples.flatMap((s) => [...(t.data as Float32Array).subarray(s * per, (s + 1) * per)])), [call.samples.length, ...dims]);
    const out = await session.run({ ...call.feeds, sample: pick(all.sample, size, [3, 32, 32]), timestep: pick(all.timestep, 1, []), encoder_hidden_states: pick(all.encoder_hidden_states, 16 * 64, [16, 64]) });
    call.samples.forEach((s, i) => result.set((out.out_sample.data as Float32Array).subarray(i * size, (i + 1) * size), s * size));
  }
  return { mode: graph.mode, calls: calls.length, result, size, resident: feeder.residentBytes() };
}

async function reference(tensors: Dense[], alpha: number, beta: number, sample: number, batch: number) {
  const session = await bakedSession(tensors, alpha, beta);
  const out = (await session.run(inputs(batch))).out_sample.data as Float32Array;
  const size = 3 * 32 * 32;
  return out.subarray(sample * size, (sample + 1) * size);
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('real-model weight sets (onnxruntime-node, embedded UNet)', () => {
  it('stacks Linear sites: one call serves θ_pos and θ_neg samples', async () => {
    const tensors = [touched(sites[0].weightName, { eta: 1, delta: 2 }), touched(sites[5].weightName, { delta: 3 })];
    const ids = [POSITIVE, negativeId(0.5, 1)];
    const { mode, calls, result, size } = await runMixed(tensors, ids);
    expect([mode, calls]).toEqual(['stacked', 1]);
    expect(maxDiff(result.subarray(0, size), await reference(tensors, 1, 0, 0, 2))).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(size), await reference(tensors, 0.5, 1, 1, 2))).toBeLessThan(1e-5);
  });

  it('groups calls by weight set when a dense η touches convolutions and norms, and matches the baked weights', async () => {
    const convName = [...initializers.keys()].find((n) => n === 'conv_in.weight')!;
    expect(convName).toBeDefined();
    const tensors = [touched(convName, { eta: 4 }), touched(sites[1].weightName, { eta: 5, delta: 6 })];
    const ids = [POSITIVE, negativeId(0.5, 1), POSITIVE, negativeId(0.5, 1)];
    const { mode, calls, result, size } = await runMixed(tensors, ids);
    expect([mode, calls]).toEqual(['grouped', 2]);
    const pos = await reference(tensors, 1, 0, 0, 4);
    const neg = await reference(tensors, 0.5, 1, 1, 4);
    expect(maxDiff(result.subarray(0, size), pos)).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(size, 2 * size), neg)).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(2 * size, 3 * size), await reference(tensors, 1, 0, 2, 4))).toBeLessThan(1e-5);
    // The NPO image really differs from the baseline: the test would not notice a θ_neg that stayed θ_pos otherwise.
    expect(maxDiff(pos, neg)).toBeGreaterThan(1e-3);
  });

  it('keeps one copy where θ_neg equals θ_pos (α = 1 and no δ on that tensor)', async () => {
    const conv = touched('conv_in.weight', { eta: 4 });
    const site = touched(sites[2].weightName, { delta: 7 });
    const { mode, resident } = await runMixed([conv, site], [POSITIVE, negativeId(1, 1)]);
    expect(mode).toBe('grouped');
    // θ_pos of the η tensor (the δ site's θ_pos is θ's own values) plus θ_neg of the δ site only.
    expect(resident).toBe(4 * (conv.base.length + site.base.length));
  });

  it('makes a LoRA δ per tensor when merging; resident = 2 × touched × element bytes, the fit check\'s formula', async () => {
    const chosen = [sites[0], sites[3], sites[5]];
    const entry = (site: LoraSite, seed: number): LoraEntry => ({ rank: 2, scale: 0.5, inFeatures: site.inFeatures, outFeatures: site.outFeatures, down: offset(2 * site.inFeatures, seed).map((v) => v * 20), up: offset(2 * site.outFeatures, seed + 1).map((v) => v * 20) });
    const set = { format: 'diffusers', entries: new Map(chosen.map((site, i) => [site.modulePath, entry(site, 10 + i)])), skipped: [], metadata: {} } as LoraSet;
    const lazy: TouchedTensor[] = chosen.map((site) => ({ ...touched(site.weightName, {}), delta: () => loraDeltaWeight(set.entries.get(site.modulePath)!, site.layout) }));
    const dense = lazy.map((t) => ({ ...t, delta: (t.delta as () => Float32Array)() })) as Dense[];
    const ids = [POSITIVE, negativeId(1, 1.5)];
    const { mode, result, size, resident } = await runMixed(lazy, ids);
    expect(mode).toBe('stacked');
    expect(maxDiff(result.subarray(0, size), await reference(dense, 1, 0, 0, 2))).toBeLessThan(1e-5);
    expect(maxDiff(result.subarray(size), await reference(dense, 1, 1.5, 1, 2))).toBeLessThan(1e-5);
    // Independently: the sites' shapes from the graph, against what the manifest's footprint makes the fit check count.
    const touchedElements = chosen.reduce((n, site) => n + site.dims.reduce((a, b) => a * b, 1), 0);
    expect(resident).toBe(2 * touchedElements * 4);
    expect(npoWorkerArrays(npoFootprint(model, { eta: [], delta: [set] }, 4)!).sets).toBe(resident);
  });

  it('keeps float16 weights float16: the stacked input is half(θ + α·η + β·δ) from θ\'s own bits', () => {
    const site = sites[4];
    const n = site.dims.reduce((a, b) => a * b, 1);
    const theta = offset(n, 21).map((v) => v * 40);
    const eta = offset(n, 22);
    const delta = offset(n, 23);
    const base = toHalf(theta);
    const t: TouchedTensor = { name: site.weightName, dims: site.dims, base, type: 'float16', site, eta, delta: () => delta };
    const feeder = createWeightFeeder(ort, [t], 'stacked');
    const input = feeder.callsFor([POSITIVE, negativeId(0.5, 2)])[0].feeds[site.weightName];
    expect(input.type).toBe('float16');
    const values = input.data as Uint16Array;
    const expected = (alpha: number, beta: number) => Uint16Array.from({ length: n }, (_, i) => floatToHalf(halfToFloat(base[i]) + alpha * eta[i] + beta * delta[i]));
    expect(values.subarray(0, n)).toEqual(expected(1, 0));
    expect(values.subarray(n)).toEqual(expected(0.5, 2));
    expect(feeder.residentBytes()).toBe(2 * n * 2);
  });
});

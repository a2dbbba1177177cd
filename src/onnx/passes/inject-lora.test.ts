// LoRA injection against merging: with A = B = 0 the rewritten graph gives the original outputs exactly; with random
// A, B and scale s it gives the outputs of the original graph with W replaced by W + s·B·A in the weight's layout
// (merged with loraDeltaWeight from src/lora, so the two layouts are checked against an independent implementation).
// Tolerance 1e-5 absolute (float32 sums of a few dozen terms of size ~1). Runs in onnxruntime-node.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { paramSource } from '../../embedded/layers.ts';
import { buildUnet, TINY_UNET } from '../../embedded/unet.ts';
import { loraDeltaWeight } from '../../lora/formats.ts';
import { createGraphBuilder } from '../builder.ts';
import { findLoraSites, type LoraSite } from '../lora-sites.ts';
import { writeModel } from '../model-io.ts';
import { DataType, type ModelProto } from '../proto.ts';
import { readFloatTensor } from '../tensor.ts';
import { injectLora, LORA_SCALE_INPUT } from './inject-lora.ts';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
const randomArray = (n: number, r: () => number) => Float32Array.from({ length: n }, r);

type Weights = Record<'q' | 'k' | 'v' | 'p', Float32Array>;
const SHAPES = { q: [4, 5], k: [4, 6], v: [3, 4], p: [5, 4, 1, 1] };
const TARGETS = ['to_q', 'to_k', 'to_v', 'proj'];

/** MatMul [in,out] on [2,3,4]; Gemm transB=0 and transB=1 (with bias C) on [3,4]; 1×1 Conv stride 2, pads 1, bias. */
function smallModel(w: Weights): ModelProto {
  const g = createGraphBuilder('small');
  const x3 = g.input('x3', DataType.FLOAT, [2, 3, 4]);
  const x2 = g.input('x2', DataType.FLOAT, [3, 4]);
  const img = g.input('img', DataType.FLOAT, [1, 4, 5, 5]);
  const r = rng(9);
  g.scope('blk', () => {
    const q = g.scope('to_q', () => g.op('MatMul', [x3, g.initializer('wq', SHAPES.q, w.q)]));
    const k = g.scope('to_k', () => g.op('Gemm', [x2, g.initializer('wk', SHAPES.k, w.k), g.constant(randomArray(6, r), [6])]));
    const v = g.scope('to_v', () => g.op('Gemm', [x2, g.initializer('wv', SHAPES.v, w.v), g.constant(randomArray(3, r), [3])], { transB: 1 }));
    const p = g.scope('proj', () => g.op('Conv', [img, g.initializer('wp', SHAPES.p, w.p), g.constant(randomArray(5, r), [5])], { kernel_shape: [1, 1], strides: [2, 2], pads: [1, 1, 1, 1] }));
    g.node('Relu', [q], {}, { outputs: ['yq'] }); // a consumer, so the renamed output must still feed it
    g.node('Identity', [k], {}, { outputs: ['yk'] });
    g.node('Identity', [v], {}, { outputs: ['yv'] });
    g.node('Identity', [p], {}, { outputs: ['yp'] });
  });
  for (const o of ['yq', 'yk', 'yv', 'yp']) g.output(o);
  return g.build();
}

async function run(model: ModelProto, feeds: Record<string, { data: Float32Array; dims: number[] }>) {
  const session = await ort.InferenceSession.create(writeModel(model));
  const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)]));
  const out = await session.run(tensors);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

function loraFeeds(sites: LoraSite[], rank: number, scale: number, r: () => number | null) {
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = { [LORA_SCALE_INPUT]: { data: new Float32Array([scale]), dims: [] } };
  const entries = new Map<string, { down: Float32Array; up: Float32Array }>();
  for (const s of sites) {
    const down = Float32Array.from({ length: rank * s.inFeatures }, () => r() ?? 0);
    const up = Float32Array.from({ length: s.outFeatures * rank }, () => r() ?? 0);
    feeds[`${s.modulePath}.lora_A`] = { data: down, dims: [rank, s.inFeatures] };
    feeds[`${s.modulePath}.lora_B`] = { data: up, dims: [s.outFeatures, rank] };
    entries.set(s.modulePath, { down, up });
  }
  return { feeds, entries };
}

const merged = (base: Float32Array, site: LoraSite, e: { down: Float32Array; up: Float32Array }, rank: number, scale: number) => {
  const delta = loraDeltaWeight({ ...e, rank, scale, inFeatures: site.inFeatures, outFeatures: site.outFeatures }, site.layout);
  return base.map((v, i) => v + delta[i]);
};

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('injectLora', () => {
  const r = rng(1);
  const weights: Weights = { q: randomArray(20, r), k: randomArray(24, r), v: randomArray(12, r), p: randomArray(20, r) };
  const inputs = { x3: { data: randomArray(24, r), dims: [2, 3, 4] }, x2: { data: randomArray(12, r), dims: [3, 4] }, img: { data: randomArray(100, r), dims: [1, 4, 5, 5] } };

  it('finds MatMul [in,out], Gemm transB 0/1 and 1×1 Conv sites with the right layouts', () => {
    const sites = findLoraSites(smallModel(weights), TARGETS);
    expect(sites.map((s) => [s.modulePath, s.opType, s.layout, s.inFeatures, s.outFeatures])).toEqual([
      ['blk.to_q', 'MatMul', 'in-out', 4, 5], ['blk.to_k', 'Gemm', 'in-out', 4, 6], ['blk.to_v', 'Gemm', 'out-in', 4, 3], ['blk.proj', 'Conv', 'out-in', 4, 5],
    ]);
  });

  it('with A = B = 0 gives exactly the original outputs; with random A, B equals the merged model (1e-5)', async () => {
    const model = smallModel(weights);
    const sites = findLoraSites(model, TARGETS);
    const rank = 2;
    const { model: injected, inputs: loraInputs } = injectLora(model, sites, rank);
    expect(loraInputs.map((i) => i.a)).toEqual(sites.map((s) => `${s.modulePath}.lora_A`));
    const original = await run(model, inputs);

    const zeros = loraFeeds(sites, rank, 0.8, () => 0);
    const withZero = await run(injected, { ...inputs, ...zeros.feeds });
    for (const k of Object.keys(original)) expect(withZero[k]).toEqual(original[k]);

    const scale = 0.7;
    const lora = loraFeeds(sites, rank, scale, rng(5));
    const withLora = await run(injected, { ...inputs, ...lora.feeds });
    const key = { q: 'blk.to_q', k: 'blk.to_k', v: 'blk.to_v', p: 'blk.proj' } as const;
    const mergedWeights = Object.fromEntries((Object.keys(key) as (keyof Weights)[]).map((k) => {
      const site = sites.find((s) => s.modulePath === key[k])!;
      return [k, merged(weights[k], site, lora.entries.get(site.modulePath)!, rank, scale)];
    })) as Weights;
    const want = await run(smallModel(mergedWeights), inputs);
    for (const k of Object.keys(want)) {
      expect(maxDiff(withLora[k], original[k])).toBeGreaterThan(1e-2); // the LoRA does change every output
      expect(maxDiff(withLora[k], want[k])).toBeLessThan(1e-5);
    }
    // scale 0 is the reference: the original outputs, whatever A and B hold.
    const scaleZero = await run(injected, { ...inputs, ...lora.feeds, [LORA_SCALE_INPUT]: { data: new Float32Array([0]), dims: [] } });
    for (const k of Object.keys(original)) expect(scaleZero[k]).toEqual(original[k]);
  });

  it('on the embedded UNet: zero LoRA is the original, a random LoRA equals merged weights (1e-5)', async () => {
    const unet = buildUnet(TINY_UNET, paramSource(1234));
    const sites = findLoraSites(unet);
    expect(sites.length).toBe(56); // 7 transformer blocks × (attn1, attn2) × (q, k, v, out)
    const rank = 3;
    const { model: injected } = injectLora(unet, sites, rank);
    const rr = rng(11);
    const feeds = {
      sample: { data: randomArray(3 * 32 * 32, rr), dims: [1, 3, 32, 32] },
      timestep: { data: new Float32Array([417]), dims: [1] },
      encoder_hidden_states: { data: randomArray(16 * 64, rr), dims: [1, 16, 64] },
    };
    const original = (await run(unet, feeds)).out_sample;
    const zero = (await run(injected, { ...feeds, ...loraFeeds(sites, rank, 1, () => 0).feeds })).out_sample;
    expect(maxDiff(zero, original)).toBe(0);

    const scale = 0.5;
    const lora = loraFeeds(sites, rank, scale, () => rr() * 0.3);
    const withLora = (await run(injected, { ...feeds, ...lora.feeds })).out_sample;
    const byName = new Map(sites.map((s) => [s.weightName, s]));
    const mergedUnet: ModelProto = { ...unet, graph: { ...unet.graph, initializer: unet.graph!.initializer!.map((t) => {
      const site = byName.get(t.name ?? '');
      if (!site) return t;
      const { data } = readFloatTensor(t);
      return { ...t, rawData: new Uint8Array(merged(data, site, lora.entries.get(site.modulePath)!, rank, scale).buffer) };
    }) } };
    const want = (await run(mergedUnet, feeds)).out_sample;
    expect(maxDiff(withLora, original)).toBeGreaterThan(1e-3);
    expect(maxDiff(withLora, want)).toBeLessThan(1e-5);
  });

  it('refuses clearly: bad rank, no sites, Gemm with transA or alpha ≠ 1', () => {
    const model = smallModel(weights);
    const sites = findLoraSites(model, TARGETS);
    expect(() => injectLora(model, sites, 0)).toThrow(/rank 0/);
    expect(() => injectLora(model, [], 2)).toThrow(/no LoRA sites/);
    const g = createGraphBuilder();
    const x = g.input('x', DataType.FLOAT, [4, 3]);
    g.scope('to_k', () => g.node('Gemm', [x, g.initializer('w', [4, 6], randomArray(24, r))], { transA: 1 }, { outputs: ['y'] }));
    g.output('y');
    const gemm = g.build();
    expect(() => injectLora(gemm, findLoraSites(gemm, ['to_k']), 2)).toThrow(/transA = 1/);
  });
});

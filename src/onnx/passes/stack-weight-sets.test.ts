// Stacked weight sets against the original graph: a batch whose samples pick set 0 or set 1 must give, sample by
// sample, what the original graph gives with that set's weights (run on the whole batch, then the sample's rows
// taken). Covers MatMul on rank-3, rank-4 and flattened rank-2 inputs, Gemm (transB 0/1, alpha, beta·C), 1×1 Conv with
// strides, pads and bias, and the embedded UNet. Tolerance 1e-5 absolute (float32 sums of tens of terms of size ~1).
// Runs in onnxruntime-node.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { paramSource } from '../../embedded/layers.ts';
import { buildUnet, TINY_UNET } from '../../embedded/unet.ts';
import { createGraphBuilder, float } from '../builder.ts';
import { findLoraSites } from '../lora-sites.ts';
import { readWeight, writeModel } from '../model-io.ts';
import { DataType, type ModelProto } from '../proto.ts';
import { initializersToInputs } from './initializers-to-inputs.ts';
import { stackWeightSets, WEIGHT_SET_INPUT } from './stack-weight-sets.ts';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
const randomArray = (n: number, r: () => number) => Float32Array.from({ length: n }, r);
const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
type Feeds = Record<string, ort.Tensor>;
const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

const B = 3; // samples in the batch
const TARGETS = ['to_q', 'to_k', 'to_v', 'to_out', 'proj', 'proj_plain', 'ff'];
const OUTPUTS = ['y0', 'y1', 'y2', 'y3', 'y4', 'y5', 'y6'];

/** One site of every supported form, each feeding a named output. */
function smallModel(r: () => number): ModelProto {
  const g = createGraphBuilder('small');
  const x3 = g.input('x3', DataType.FLOAT, [B, 3, 4]);
  const x2 = g.input('x2', DataType.FLOAT, [B * 2, 4]); // batch-major rows, as a flattened [B, 2, 4]
  const img = g.input('img', DataType.FLOAT, [B, 4, 5, 5]);
  const x4 = g.input('x4', DataType.FLOAT, [B, 2, 3, 4]);
  const w = (name: string, dims: number[]) => g.initializer(name, dims, randomArray(count(dims), r));
  g.scope('blk', () => {
    const outs = [
      g.scope('to_q', () => g.op('MatMul', [x3, w('wq', [4, 5])])),
      g.scope('to_out', () => g.op('MatMul', [x2, w('wo', [4, 3])])),
      g.scope('to_k', () => g.op('Gemm', [x2, w('wk', [4, 6]), g.constant(randomArray(6, r), [6])])),
      g.scope('to_v', () => g.op('Gemm', [x2, w('wv', [3, 4]), g.constant(randomArray(3, r), [3])], { transB: 1, alpha: float(0.5), beta: float(2) })),
      g.scope('proj', () => g.op('Conv', [img, w('wp', [5, 4, 1, 1]), g.constant(randomArray(5, r), [5])], { kernel_shape: [1, 1], strides: [2, 2], pads: [1, 0, 1, 1] })),
      g.scope('proj_plain', () => g.op('Conv', [img, w('wc', [2, 4, 1, 1])], { kernel_shape: [1, 1] })),
      g.scope('ff', () => g.op('MatMul', [x4, w('wf', [4, 3])])),
    ];
    outs.forEach((o, i) => g.node('Identity', [o], {}, { outputs: [`y${i}`] }));
  });
  OUTPUTS.forEach((o) => g.output(o));
  return g.build();
}

async function run(model: ModelProto, feeds: Feeds) {
  const session = await ort.InferenceSession.create(writeModel(model));
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { data: v.data as Float32Array, dims: v.dims as number[] }]));
}

/** Stacks two weight sets for `model` (set 1 = set 0 plus noise) and returns both sets' feeds and the stacked graph. */
function prepare(model: ModelProto, targets?: string[]) {
  const sites = findLoraSites(model, targets);
  const { model: promoted, promoted: weights } = initializersToInputs(model, sites.map((s) => s.weightName));
  const r = rng(77);
  const sets = [0, 1].map((set) => Object.fromEntries(weights.map((p) => {
    const base = readWeight(p.tensor, new Map()).data;
    return [p.name, f32(set ? base.map((v) => v + 0.3 * r()) : base, p.dims)];
  })));
  const stacked = Object.fromEntries(weights.map((p) => {
    const data = new Float32Array(2 * count(p.dims));
    data.set(sets[0][p.name].data as Float32Array);
    data.set(sets[1][p.name].data as Float32Array, count(p.dims));
    return [p.name, f32(data, [2, ...p.dims])];
  }));
  return { sites, promoted, stackedModel: stackWeightSets(promoted, sites), sets, stacked };
}

/** Max |stacked − reference| where each sample's reference rows come from the run with its own weight set. */
async function compare(model: ModelProto, inputs: Feeds, choice: number[], targets?: string[]) {
  const { promoted, stackedModel, sets, stacked } = prepare(model, targets);
  const perSet = [await run(promoted, { ...inputs, ...sets[0] }), await run(promoted, { ...inputs, ...sets[1] })];
  const got = await run(stackedModel, { ...inputs, ...stacked, [WEIGHT_SET_INPUT]: new ort.Tensor('int64', BigInt64Array.from(choice.map(BigInt)), [choice.length]) });
  let worst = 0;
  let setsDiffer = Infinity;
  for (const name of Object.keys(got)) {
    expect(got[name].dims).toEqual(perSet[0][name].dims);
    const rows = got[name].data.length / choice.length; // outputs are batch-major
    choice.forEach((set, b) => {
      for (let i = b * rows; i < (b + 1) * rows; i++) worst = Math.max(worst, Math.abs(got[name].data[i] - perSet[set][name].data[i]));
    });
    let diff = 0;
    perSet[0][name].data.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - perSet[1][name].data[i]))));
    setsDiffer = Math.min(setsDiffer, diff);
  }
  return { worst, setsDiffer };
}

describe('stackWeightSets', () => {
  it('gives each sample its own weight set: MatMul, Gemm and 1×1 Conv forms (1e-5)', async () => {
    const r = rng(3);
    const model = smallModel(r);
    expect(findLoraSites(model, TARGETS).map((s) => s.opType)).toEqual(['MatMul', 'MatMul', 'Gemm', 'Gemm', 'Conv', 'Conv', 'MatMul']);
    const inputs = {
      x3: f32(randomArray(B * 12, r), [B, 3, 4]), x2: f32(randomArray(B * 8, r), [B * 2, 4]),
      img: f32(randomArray(B * 100, r), [B, 4, 5, 5]), x4: f32(randomArray(B * 24, r), [B, 2, 3, 4]),
    };
    for (const choice of [[0, 1, 0], [1, 1, 0], [0, 0, 0]]) {
      const { worst, setsDiffer } = await compare(model, inputs, choice, TARGETS);
      expect(setsDiffer).toBeGreaterThan(1e-2); // the two sets do give different outputs everywhere
      expect(worst).toBeLessThan(1e-5);
    }
  });

  it('adds only a Gather per site where the input rank is known (rank 3: MatMul broadcasts the batch)', () => {
    const model = smallModel(rng(3));
    const { sites, stackedModel } = prepare(model, TARGETS);
    const opsOf = (modulePath: string) => stackedModel.graph!.node!.filter((n) => n.name?.startsWith(`/${modulePath.replace('.', '/')}/`)).map((n) => n.opType);
    expect(sites[0].modulePath).toBe('blk.to_q');
    expect(opsOf('blk.to_q')).toEqual(['Gather', 'MatMul']);
    expect(opsOf('blk.ff')).toEqual(['Gather', 'Unsqueeze', 'MatMul']);
    expect(opsOf('blk.to_out')).toContain('Reshape'); // rank 2: rows regrouped per sample
  });

  it('on the embedded UNet: [θ_pos, θ_neg] in one call equals two calls (1e-5)', async () => {
    const unet = buildUnet(TINY_UNET, paramSource(1234));
    const r = rng(11);
    const inputs = {
      sample: f32(randomArray(2 * 3 * 32 * 32, r), [2, 3, 32, 32]),
      timestep: f32(new Float32Array([417, 417]), [2]),
      encoder_hidden_states: f32(randomArray(2 * 16 * 64, r), [2, 16, 64]),
    };
    const { worst, setsDiffer } = await compare(unet, inputs, [0, 1]);
    expect(setsDiffer).toBeGreaterThan(1e-3);
    expect(worst).toBeLessThan(1e-5);
  });

  it('refuses clearly: weights not promoted, a shared weight, Gemm with transA, a name clash', () => {
    const r = rng(5);
    const model = smallModel(r);
    const sites = findLoraSites(model, TARGETS);
    expect(() => stackWeightSets(model, sites)).toThrow(/wq \(blk.to_q\) is not a graph input; promote it first/);
    const { promoted } = prepare(model, TARGETS);
    expect(() => stackWeightSets(stackWeightSets(promoted, sites), sites)).toThrow(/already has an input named weight_set/);

    const shared = createGraphBuilder();
    const x = shared.input('x', DataType.FLOAT, [2, 4]);
    const w = shared.initializer('w', [4, 4], randomArray(16, r));
    shared.scope('to_q', () => shared.node('MatMul', [x, w], {}, { outputs: ['q'] }));
    shared.scope('other', () => shared.node('MatMul', [x, w], {}, { outputs: ['o'] }));
    ['q', 'o'].forEach((o) => shared.output(o));
    const sharedModel = shared.build();
    const sharedSites = findLoraSites(sharedModel, ['to_q']);
    expect(() => stackWeightSets(initializersToInputs(sharedModel, ['w']).model, sharedSites)).toThrow(/w is read by \/other\/MatMul as well as by \/to_q\/MatMul/);

    const gemm = createGraphBuilder();
    const xg = gemm.input('x', DataType.FLOAT, [4, 3]);
    gemm.scope('to_k', () => gemm.node('Gemm', [xg, gemm.initializer('w', [4, 6], randomArray(24, r))], { transA: 1 }, { outputs: ['y'] }));
    gemm.output('y');
    const gemmModel = gemm.build();
    expect(() => stackWeightSets(initializersToInputs(gemmModel, ['w']).model, findLoraSites(gemmModel, ['to_k']))).toThrow(/transA = 1/);
  });
});

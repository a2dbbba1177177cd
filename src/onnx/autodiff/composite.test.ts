// End-to-end checks of buildGradientModel on composite graphs, and of its contract:
//  - a two-head attention block (LayerNorm → q/k/v with a LoRA on q → Softmax(q·kᵀ/√d) → ·v → out → residual),
//    float64 (tol 1e-6) and as a float32 gradient graph against float64 FD (tol 1e-4);
//  - a small UNet-like block with a symbolic batch dim (sinusoidal timestep embedding, Conv, decomposed group norm,
//    SiLU, nearest 2× upsampling, skip Concat, Slice chunk), checked at batch sizes 1 and 3 (float32, tol 2e-3);
//  - errors: an op without a rule names the op and node; bad loss / wrt names; initializers as wrt; unused wrt.
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { createGraphBuilder, type GraphBuilder } from '../builder.ts';
import { readModel, writeModel } from '../model-io.ts';
import { DataType } from '../proto.ts';
import { buildGradientModel } from './index.ts';
import { analyticGradients, buildCase, gradCheck, makeFeeds, seeded, type CaseSpec } from './gradcheck.ts';
import { attentionSpec, unetSpec } from './fixtures.ts';

describe('composite graphs', () => {
  it('attention block with LoRA on q (float64, tol 1e-6)', async () => {
    expect((await gradCheck(attentionSpec())).relError).toBeLessThan(1e-6);
  });

  it('attention block as a float32 gradient graph vs float64 FD (tol 1e-4)', async () => {
    expect((await gradCheck(attentionSpec({ dtype: 'float32' }))).relError).toBeLessThan(1e-4);
  });

  it('UNet-like block with a symbolic batch, at batch 1 and 3 (float32, tol 2e-3)', async () => {
    for (const n of [1, 3]) {
      const dims = { x: [n, 2, 4, 4], t: [n] };
      expect((await gradCheck(unetSpec, dims)).relError, `batch ${n}`).toBeLessThan(2e-3);
    }
  });
});

function tinyModel(options: { weightAsInitializer?: boolean; extra?: (g: GraphBuilder, x: string, w: string) => void } = {}) {
  const g = createGraphBuilder('tiny');
  const x = g.input('x', DataType.FLOAT, [2, 3]);
  const wData = Float32Array.from({ length: 6 }, seeded(5));
  const w = options.weightAsInitializer ? g.initializer('w', [3, 2], wData) : g.input('w', DataType.FLOAT, [3, 2]);
  const u = g.input('unused', DataType.FLOAT, [4]);
  g.node('ReduceSum', [g.op('Tanh', [g.op('MatMul', [x, w])])], { keepdims: 0 }, { outputs: ['loss'] });
  g.output('loss', DataType.FLOAT, []);
  g.node('Neg', [u], {}, { outputs: ['side'] });
  g.output('side', DataType.FLOAT, [4]);
  options.extra?.(g, x, w);
  return { bytes: writeModel(g.build()), wData };
}

describe('opset 13 forms', () => {
  it('Gather (unique indices, no ScatterND reduction), Split, Squeeze/Unsqueeze, ReduceSum/ReduceMean, Softmax (float64, tol 1e-6)', async () => {
    const spec: CaseSpec = {
      inputs: { x: { dims: [2, 5, 3] }, w: { dims: [3] } },
      build: (g, ins) => {
        const picked = g.op('Gather', [ins.x, g.int64s([4, 0, -2])], { axis: 1 }); // [2, 3, 3]
        const [p, q] = g.node('Split', [g.op('Mul', [picked, ins.w]), g.int64s([1, 2])], { axis: 2 }, { outputs: 2 });
        const s = g.op('Softmax', [g.op('Unsqueeze', [g.op('Squeeze', [p, g.int64s([2])]), g.int64s([0])])], { axis: -1 });
        const m = g.op('ReduceMean', [q], { axes: [1], keepdims: 1 });
        return g.op('Add', [g.op('ReduceSum', [g.op('Mul', [m, q]), g.int64s([2])], { keepdims: 0 }), s]);
      },
      opset: 13,
    };
    expect((await gradCheck(spec)).relError).toBeLessThan(1e-6);
  });

  it('refuses a Gather gradient with repeated indices below opset 16', () => {
    const spec: CaseSpec = { inputs: { x: { dims: [4, 2] } }, build: (g, ins) => g.op('Gather', [ins.x, g.int64s([1, 1])]), opset: 13 };
    expect(() => buildGradientModel(buildCase(spec, 'float64'), { loss: 'loss', wrt: ['x'] })).toThrow(/needs opset 16/);
  });
});

describe('buildGradientModel contract', () => {
  it('refuses a loss with more than one element', () => {
    const g = createGraphBuilder();
    g.node('Exp', [g.input('x', DataType.FLOAT, [3])], {}, { outputs: ['y'] });
    g.output('y', DataType.FLOAT, [3]);
    expect(() => buildGradientModel(writeModel(g.build()), { loss: 'y', wrt: ['x'] })).toThrow(/loss "y" has shape \[3\]/);
  });

  it('names the op and node that has no gradient rule on the path', () => {
    const spec: CaseSpec = { inputs: { x: { dims: [2, 3] } }, build: (g, ins) => g.op('Hardmax', [g.op('Exp', [ins.x])], {}, 'my_hardmax') };
    expect(() => buildGradientModel(buildCase(spec, 'float64'), { loss: 'loss', wrt: ['x'] })).toThrow(/no gradient rule for op Hardmax at Hardmax node "\/my_hardmax"/);
  });

  it('does no gradient work for nodes off the path (an op without a rule there is fine)', async () => {
    const { bytes } = tinyModel({
      extra: (g, x, w) => {
        g.node('Hardmax', [g.op('MatMul', [x, w])], {}, { outputs: ['off_path'] });
        g.output('off_path', DataType.FLOAT, [2, 2]);
      },
    });
    const grad = readModel(buildGradientModel(bytes, { loss: 'loss', wrt: ['w'] }));
    const added = grad.graph!.node!.length - readModel(bytes).graph!.node!.length;
    expect(added).toBeLessThan(20);
    expect(grad.graph!.output!.map((o) => o.name)).toEqual(['loss', 'side', 'off_path', 'w_grad']);
  });

  it('rejects a loss or wrt that is not in the graph', () => {
    const { bytes } = tinyModel();
    expect(() => buildGradientModel(bytes, { loss: 'nope', wrt: ['w'] })).toThrow(/loss "nope" is not a value/);
    expect(() => buildGradientModel(bytes, { loss: 'loss', wrt: ['missing'] })).toThrow(/"missing" is not a graph input or initializer/);
  });

  it('differentiates initializers like inputs, and gives zeros for a wrt that does not reach the loss', async () => {
    const asInput = tinyModel();
    const asInit = tinyModel({ weightAsInitializer: true });
    const x = new ort.Tensor('float32', Float32Array.from({ length: 6 }, seeded(9)), [2, 3]);
    const unused = new ort.Tensor('float32', new Float32Array(4).fill(1), [4]);
    const run = async (bytes: Uint8Array, feeds: Record<string, ort.Tensor>) => {
      const session = await ort.InferenceSession.create(buildGradientModel(bytes, { loss: 'loss', wrt: ['w', 'unused'] }));
      const out = await session.run(feeds);
      await session.release();
      return out;
    };
    const a = await run(asInput.bytes, { x, unused, w: new ort.Tensor('float32', asInput.wData, [3, 2]) });
    const b = await run(asInit.bytes, { x, unused });
    expect(Array.from(b.w_grad.data as Float32Array)).toEqual(Array.from(a.w_grad.data as Float32Array));
    expect(Array.from(a.w_grad.data as Float32Array).some((v) => v !== 0)).toBe(true);
    expect(Array.from(a.unused_grad.data as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(a.unused_grad.dims).toEqual([4]);
  });

  it('keeps the original outputs and their values', async () => {
    const values = makeFeeds(attentionSpec(), 3);
    const { loss } = await analyticGradients(attentionSpec(), values);
    const session = await ort.InferenceSession.create(buildCase(attentionSpec(), 'float64'), { graphOptimizationLevel: 'basic' });
    const feeds = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, new ort.Tensor('float64', v, attentionSpec().inputs[k].dims)]));
    const plain = await session.run(feeds);
    await session.release();
    expect(loss).toBeCloseTo(Number(plain.loss.data[0]), 12);
  });
});

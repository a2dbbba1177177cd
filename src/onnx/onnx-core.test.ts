// ONNX core: builder → bytes → onnxruntime-node, compared with a float64 CPU reference; round trips; external data;
// the initializer-to-input pass; LoRA site discovery by node name.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { createGraphBuilder, float } from './builder.ts';
import { externalizeWeights, externalLocations, inlineExternalData, readModel, readStoredWeight, readWeight, writeModel } from './model-io.ts';
import { initializersToInputs } from './passes/initializers-to-inputs.ts';
import { findLoraSites } from './lora-sites.ts';
import { DataType } from './proto.ts';

function seeded(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
const randomArray = (n: number, rand: () => number) => Float32Array.from({ length: n }, rand);

/** y = relu(x·W + b)·0.5 with W an initializer named like a diffusers export. */
function buildLinear(inF: number, outF: number, rand: () => number) {
  const g = createGraphBuilder('linear');
  const x = g.input('x', DataType.FLOAT, ['batch', inF]);
  const w = randomArray(inF * outF, rand);
  const b = randomArray(outF, rand);
  const y = g.scope('attn1', () =>
    g.scope('to_q', () => {
      const wName = g.initializer('onnx::MatMul_1', [inF, outF], w);
      const mm = g.op('MatMul', [x, wName]);
      return g.op('Add', [mm, g.initializer('to_q.bias', [outF], b)]);
    }),
  );
  const relu = g.op('Relu', [y]);
  g.node('Mul', [relu, g.scalar(0.5)], {}, { outputs: ['y'] });
  g.output('y', DataType.FLOAT, ['batch', outF]);
  return { model: g.build(), w, b };
}

function referenceLinear(x: Float32Array, w: Float32Array, b: Float32Array, batch: number, inF: number, outF: number) {
  const out = new Float64Array(batch * outF);
  for (let n = 0; n < batch; n++)
    for (let o = 0; o < outF; o++) {
      let acc = b[o];
      for (let i = 0; i < inF; i++) acc += x[n * inF + i] * w[i * outF + o];
      out[n * outF + o] = Math.max(acc, 0) * 0.5;
    }
  return out;
}

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>, options?: ort.InferenceSession.SessionOptions) {
  const session = await ort.InferenceSession.create(bytes, options);
  const result = await session.run(feeds);
  await session.release();
  return result;
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('ONNX core', () => {
  const rand = seeded(1);
  const [batch, inF, outF] = [3, 7, 5];
  const { model, w, b } = buildLinear(inF, outF, rand);
  const x = randomArray(batch * inF, rand);
  const expected = referenceLinear(x, w, b, batch, inF, outF);

  it('builds a graph that onnxruntime-node runs, matching a float64 reference (tol 1e-5)', async () => {
    const out = await run(writeModel(model), { x: new ort.Tensor('float32', x, [batch, inF]) });
    expect(maxAbsDiff(out.y.data as Float32Array, expected)).toBeLessThan(1e-5);
  });

  it('round-trips through bytes unchanged', () => {
    const bytes = writeModel(model);
    const again = writeModel(readModel(bytes));
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
    expect(readModel(bytes).graph?.node?.map((n) => n.name)).toEqual(['/attn1/to_q/MatMul', '/attn1/to_q/Add', '/Relu', '/Mul']);
  });

  it('moves weights to external data and back, and ORT loads the external form from disk', async () => {
    const { model: external, data } = externalizeWeights(model, 'weights.bin', 16);
    expect(externalLocations(external)).toEqual(['weights.bin']);
    const dir = mkdtempSync(join(tmpdir(), 'onnx-'));
    writeFileSync(join(dir, 'model.onnx'), writeModel(external));
    writeFileSync(join(dir, 'weights.bin'), data);
    const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    const out = await session.run({ x: new ort.Tensor('float32', x, [batch, inF]) });
    expect(maxAbsDiff(out.y.data as Float32Array, expected)).toBeLessThan(1e-5);
    const inlined = inlineExternalData(readModel(writeModel(external)), new Map([['weights.bin', data]]));
    expect(Buffer.from(writeModel(inlined)).equals(Buffer.from(writeModel(model)))).toBe(true);
  });

  it('rejects external data that points past the end of its file', () => {
    const { model: external, data } = externalizeWeights(model, 'weights.bin', 16);
    const tensor = external.graph!.initializer!.find((t) => t.name === 'onnx::MatMul_1')!;
    expect(() => readWeight(tensor, new Map([['weights.bin', data.subarray(0, 40)]]))).toThrow(/past the end of "weights.bin"/);
    expect(() => readWeight(tensor, new Map())).toThrow(/external data file "weights.bin" was not provided/);
  });

  it('reads a stored weight as a view of the file bytes: float32 values, float16 bits, no copy', () => {
    const half = Uint16Array.from({ length: 24 }, (_, i) => 0x3c00 + 37 * i); // 1.0 and up, as half bits
    const withHalf = { ...model, graph: { ...model.graph!, initializer: [...model.graph!.initializer!, { name: 'half', dims: [4, 6], dataType: DataType.FLOAT16, rawData: new Uint8Array(half.buffer.slice(0)) }] } };
    const { model: external, data } = externalizeWeights(withHalf, 'weights.bin', 16);
    const files = new Map([['weights.bin', data]]);
    const f16 = readStoredWeight(external.graph!.initializer!.find((t) => t.name === 'half')!, files);
    expect(f16).toMatchObject({ dims: [4, 6], type: 'float16' });
    expect(f16.data).toEqual(half);
    expect(f16.data.buffer).toBe(data.buffer);
    const w = external.graph!.initializer!.find((t) => t.name === 'onnx::MatMul_1')!;
    const f32 = readStoredWeight(w, files);
    expect(f32.type).toBe('float32');
    expect(f32.data).toEqual(readWeight(w, files).data);
    expect(f32.data.buffer).toBe(data.buffer);
  });

  it('rejects bytes that are not an ONNX model', () => {
    expect(() => readModel(new TextEncoder().encode('<!doctype html><html>not a model</html>'))).toThrow(/not a valid ONNX model/);
  });

  it('promotes initializers to inputs; feeding the same values gives the same outputs, others change them', async () => {
    const { model: promotedModel, promoted } = initializersToInputs(model, ['onnx::MatMul_1']);
    expect(promoted.map((p) => [p.name, p.dims])).toEqual([['onnx::MatMul_1', [inF, outF]]]);
    expect(promotedModel.graph!.initializer!.some((t) => t.name === 'onnx::MatMul_1')).toBe(false);
    const feeds = { x: new ort.Tensor('float32', x, [batch, inF]), 'onnx::MatMul_1': new ort.Tensor('float32', w, [inF, outF]) };
    const same = await run(writeModel(promotedModel), feeds);
    expect(maxAbsDiff(same.y.data as Float32Array, expected)).toBeLessThan(1e-5);
    const w2 = w.map((v) => v * 2);
    const changed = await run(writeModel(promotedModel), { ...feeds, 'onnx::MatMul_1': new ort.Tensor('float32', w2, [inF, outF]) });
    expect(maxAbsDiff(changed.y.data as Float32Array, referenceLinear(x, w2, b, batch, inF, outF))).toBeLessThan(1e-5);
    expect(() => initializersToInputs(model, ['nope'])).toThrow(/no initializer named nope/);
  });

  it('finds LoRA sites by node name for MatMul [in,out], Gemm (transB) and 1×1 Conv', () => {
    const g = createGraphBuilder();
    const x = g.input('x', DataType.FLOAT, [1, 4]);
    const img = g.input('img', DataType.FLOAT, [1, 4, 2, 2]);
    const ones = (n: number) => new Float32Array(n).fill(1);
    g.scope('blocks.0', () => {
      g.scope('attn1', () => {
        g.scope('to_q', () => g.op('MatMul', [x, g.initializer('onnx::MatMul_9', [4, 6], ones(24))]));
        g.scope('to_out.0', () => g.op('Gemm', [x, g.initializer('w', [3, 4], ones(12))], { transB: 1, alpha: float(1) }));
      });
      g.scope('proj_in', () => g.op('Conv', [img, g.initializer('proj_in.weight', [8, 4, 1, 1], ones(32))]));
    });
    const sites = findLoraSites(g.build(), ['to_q', 'to_out.0', 'proj_in']);
    expect(sites.map((s) => [s.modulePath, s.layout, s.inFeatures, s.outFeatures, s.opType])).toEqual([
      ['blocks.0.attn1.to_q', 'in-out', 4, 6, 'MatMul'],
      ['blocks.0.attn1.to_out.0', 'out-in', 4, 3, 'Gemm'],
      ['blocks.0.proj_in', 'out-in', 4, 8, 'Conv'],
    ]);
  });
});

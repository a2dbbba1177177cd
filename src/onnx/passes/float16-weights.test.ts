// The float16-weights pass on a small chain of MatMuls whose weights are read twice (as a forward and a backward pass
// read them): which initializers it converts, where its Casts run in onnxruntime's order (execution-memory.ts, whose
// model of that order is checked against ORT's own profile there), the bytes of its external file, and the session's
// output against the same graph on float32 weights rounded to float16 (onnxruntime-node; equal to float32 round-off,
// 1e-6 relative, sums of 64 products of size ~1).
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { decodeHalfArray } from '../../lora/float16.ts';
import { roundToHalf } from '../../prepare/float16-graph.ts';
import { relL2 } from '../../pipelines/reference-metrics.ts';
import { createGraphBuilder } from '../builder.ts';
import { ortExecutionOrder, simulatePeakMemory } from '../execution-memory.ts';
import { readWeight, writeModel } from '../model-io.ts';
import { DataType, type ModelProto } from '../proto.ts';
import { FLOAT16_WEIGHTS_SESSION_EXTRA, storeWeightsAsFloat16 } from './float16-weights.ts';

const N = 64;
const LAYERS = 6;

/** y = x·W1·…·W6, then z = y·W6ᵀ·…·W1ᵀ (each weight read twice, the second time after every other layer ran). */
function chain(round = false): ModelProto {
  const g = createGraphBuilder('chain');
  let v = g.input('x', DataType.FLOAT, [2, N]);
  const weights = Array.from({ length: LAYERS }, (_, k) => {
    const values = Float32Array.from({ length: N * N }, (_, i) => Math.sin(i * 0.37 + k) / Math.sqrt(N) + 1e-4 * (i % 7));
    return g.initializer(`w${k}`, [N, N], round ? roundToHalf(values) : values);
  });
  for (const w of weights) v = g.op('MatMul', [v, w]);
  for (const w of [...weights].reverse()) v = g.op('Gemm', [v, w], { transB: 1 });
  const freq = g.initializer('freq', [N], Float32Array.from({ length: N }, (_, i) => Math.exp(-i / 7)));
  v = g.op('Mul', [v, freq], {}, '/time_proj/Mul'); // a float32 island: kept
  v = g.op('Mul', [v, g.constant(Float32Array.of(0.5, 2), [2, 1])]); // short: kept
  g.node('Identity', [v], {}, { outputs: ['z'] });
  g.output('z', DataType.FLOAT, [2, N]);
  return g.build();
}

describe('float16 weights pass', () => {
  const model = chain();
  const half = storeWeightsAsFloat16(model);

  it('converts the large weights only, and gives each reading node its own Cast, run just before it', () => {
    expect(half.converted.sort()).toEqual(Array.from({ length: LAYERS }, (_, k) => `w${k}`));
    const graph = half.model.graph!;
    const casts = graph.node!.filter((n) => n.opType === 'Cast');
    expect(casts).toHaveLength(2 * LAYERS);
    expect(graph.node!.slice(0, casts.length)).toEqual(casts); // listed first: visited last among a reader's producers
    const order = ortExecutionOrder(graph.node!);
    for (const cast of casts) {
      const at = order.indexOf(cast);
      expect(order[at + 1].input).toContain(cast.output![0]);
    }
    // never more than one float32 weight alive: the peak is the activations plus one weight
    const f32 = (name: string) => (name.includes('::f32#') ? 4 * N * N : 2 * N * 4);
    const { peakBytes } = simulatePeakMemory(order, ['z'], f32);
    expect(peakBytes).toBeLessThanOrEqual(4 * N * N + 3 * 2 * N * 4);
  });

  it('writes the weights to its file as float16 (rounded to nearest), 64-byte aligned', () => {
    const file = half.file();
    expect(half.bytes).toBe(file.byteLength);
    half.model.graph!.initializer!.filter((t) => t.dataType === DataType.FLOAT16).forEach((t, k) => {
      const offset = Number(t.externalData!.find((e) => e.key === 'offset')!.value);
      expect(offset % 64).toBe(0);
      const stored = decodeHalfArray(new Uint16Array(file.buffer, offset, N * N));
      expect(stored).toEqual(roundToHalf(readWeight(model.graph!.initializer!.find((w) => w.name === `w${k}`)!).data));
    });
  });

  it('computes what the float32 graph computes on the rounded weights, in a session with its optimizers left off', async () => {
    const x = new ort.Tensor('float32', Float32Array.from({ length: 2 * N }, (_, i) => Math.cos(i)), [2, N]);
    const options = { logSeverityLevel: 3 as const, graphOptimizationLevel: 'basic' as const };
    const session = await ort.InferenceSession.create(writeModel(half.model), { ...options, externalData: [{ path: half.location, data: half.file() }], extra: FLOAT16_WEIGHTS_SESSION_EXTRA });
    const reference = await ort.InferenceSession.create(writeModel(chain(true)), options);
    const [got, want] = [await session.run({ x }), await reference.run({ x })];
    expect(relL2(got.z.data as Float32Array, want.z.data as Float32Array)).toBeLessThan(1e-6);
    await Promise.all([session.release(), reference.release()]);
  });
});

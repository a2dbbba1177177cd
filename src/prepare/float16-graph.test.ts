// float16-graph.ts pieces the fixture test (prepare-fixture.test.ts, --dtype float16 against ORT) does not isolate:
// clamping to float16's finite range, the element-type inference, and where Casts go.
import { describe, expect, it } from 'vitest';
import { decodeHalfArray } from '../lora/float16.ts';
import { createGraphBuilder } from '../onnx/builder.ts';
import { DataType } from '../onnx/proto.ts';
import { elementTypes, floatBytesToHalf, planFloat16 } from './float16-graph.ts';

describe('float16 graph conversion', () => {
  it('clamps to ±65504 instead of overflowing (CLIP\'s causal mask is float32\'s lowest)', () => {
    const bytes = new Uint8Array(Float32Array.from([-3.4028234663852886e38, 1e5, NaN, 1, -0.5]).buffer);
    const back = decodeHalfArray(new Uint16Array(floatBytesToHalf(bytes).buffer));
    expect([...back.slice(0, 2)]).toEqual([-65504, 65504]);
    expect(back[2]).toBeNaN();
    expect([...back.slice(3)]).toEqual([1, -0.5]);
  });

  it('infers element types and casts only float values that cross precisions', () => {
    const g = createGraphBuilder('g');
    const x = g.input('x', DataType.FLOAT, [2, 3]);
    const w = g.initializer('w', [3, 3], new Float32Array(9).fill(0.5));
    const shape = g.op('Shape', [x]);
    const y = g.op('MatMul', [x, w]);
    const scales = g.constant(new Float32Array([1, 1]));
    const up = g.op('Resize', [y, '', scales]);
    const r = g.op('Reshape', [up, shape]);
    g.node('Cast', [r], { to: DataType.FLOAT }, { outputs: ['out'] });
    g.output('out', DataType.FLOAT);
    const model = g.build();
    const types = elementTypes(model);
    expect(types.get(shape)).toBe(DataType.INT64);
    expect(types.get(y)).toBe(DataType.FLOAT);
    const plan = planFloat16(model);
    expect([...plan.convert]).toEqual(['w']);
    const nodes = plan.model.graph!.node!;
    const byOp = (op: string) => nodes.filter((n) => n.opType === op);
    // x is cast once for MatMul (Shape takes it as it is); Resize's scales stay float32; the output is cast back.
    expect(byOp('Cast').map((n) => n.input![0])).toEqual(['x', r, 'out__f16']);
    expect(nodes.find((n) => n.opType === 'Shape')!.input).toEqual([x]);
    expect(nodes.find((n) => n.opType === 'Resize')!.input![2]).toBe(scales);
    expect(plan.model.graph!.initializer!.find((t) => t.name === scales)!.dataType).toBe(DataType.FLOAT);
    expect(byOp('Cast')[1].attribute![0].i).toBe(DataType.FLOAT16); // the graph's own Cast to=FLOAT now gives float16
  });
});

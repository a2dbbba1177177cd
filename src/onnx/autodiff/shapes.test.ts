// Static shape inference used by the autodiff pass: exporter-style shape arithmetic keeps symbolic dims, so the
// gradient graph needs no run-time broadcast checks where the shapes are provably equal.
import { describe, expect, it } from 'vitest';
import { createGraphBuilder } from '../builder.ts';
import { readModel, writeModel } from '../model-io.ts';
import { DataType } from '../proto.ts';
import { buildGradientModel } from './index.ts';
import { createShapeEnv, inferNode } from './shapes.ts';
import { gradCheck, type CaseSpec } from './gradcheck.ts';

/** x [n, 3, 4] → Reshape(x, [Shape(x)[0], −1, 2]) as PyTorch exports it, plus a bias. */
function exporterReshape(g: ReturnType<typeof createGraphBuilder>, x: string, bias: string) {
  const n = g.op('Unsqueeze', [g.op('Gather', [g.op('Shape', [x]), g.constant(BigInt64Array.from([0n]), [])], { axis: 0 }), g.int64s([0])]);
  const hw = g.op('Mul', [g.op('Gather', [g.op('Shape', [x]), g.int64s([1])], { axis: 0 }), g.int64s([2])]);
  const shape = g.op('Concat', [n, g.op('Div', [hw, g.int64s([2])]), g.int64s([-1])], { axis: 0 });
  return g.op('Add', [g.op('Reshape', [x, shape]), bias]);
}

describe('shape inference for autodiff', () => {
  it('folds Shape/Gather/Mul/Div/Concat into a Reshape with symbolic and inferred dims', () => {
    const g = createGraphBuilder();
    const x = g.input('x', DataType.FLOAT, ['n', 3, 4]);
    const y = exporterReshape(g, x, g.input('b', DataType.FLOAT, [4]));
    const graph = readModel(writeModel(g.build())).graph!;
    const env = createShapeEnv(graph);
    for (const node of graph.node!) inferNode(node, env);
    expect(env.types.get(y)?.dims).toEqual(['n', 3, 4]);
  });

  it('needs no run-time broadcast checks on such a graph, and its gradient is right at two batch sizes', async () => {
    const spec: CaseSpec = {
      inputs: { x: { dims: [2, 3, 4], shape: ['n', 3, 4] }, b: { dims: [4] } },
      build: (g, ins) => exporterReshape(g, ins.x, ins.b),
    };
    const g = createGraphBuilder();
    const x = g.input('x', DataType.FLOAT, ['n', 3, 4]);
    g.node('ReduceSum', [exporterReshape(g, x, g.input('b', DataType.FLOAT, [4]))], { keepdims: 0 }, { outputs: ['loss'] });
    g.output('loss', DataType.FLOAT, []);
    const grad = readModel(buildGradientModel(writeModel(g.build()), { loss: 'loss', wrt: ['x', 'b'] }));
    expect(grad.graph!.node!.filter((node) => node.opType === 'Where')).toHaveLength(0);
    for (const n of [1, 4]) expect((await gradCheck(spec, { x: [n, 3, 4] })).relError).toBeLessThan(1e-6);
  });
});

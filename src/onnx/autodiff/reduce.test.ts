// Finite-difference checks of ReduceSum (axes input), ReduceMean (axes attribute until opset 18), Softmax and
// LogSoftmax along different axes. float64 graphs, tolerance 1e-6.
import { describe, expect, it } from 'vitest';
import { gradCheck, type CaseSpec } from './gradcheck.ts';

const TOL = 1e-6;
const check = async (spec: CaseSpec, label = '') => expect((await gradCheck(spec)).relError, label).toBeLessThan(TOL);
const cube = (g: Parameters<CaseSpec['build']>[0], x: string) => g.op('Mul', [x, g.op('Mul', [x, x])]);

describe('reduction and softmax gradients (float64 FD, tol 1e-6)', () => {
  it('ReduceSum: axes input, keepdims 0/1, all axes, noop_with_empty_axes', async () => {
    for (const [axes, keepdims] of [[[1], 1], [[0, -1], 0], [undefined, 0], [undefined, 1]] as const) {
      await check({
        inputs: { x: { dims: [2, 3, 4] } },
        build: (g, ins) => cube(g, g.op('ReduceSum', axes ? [cube(g, ins.x), g.int64s([...axes])] : [cube(g, ins.x)], { keepdims })),
      }, `axes ${axes} keepdims ${keepdims}`);
    }
    await check({ inputs: { x: { dims: [2, 3] } }, build: (g, ins) => cube(g, g.op('ReduceSum', [ins.x], { noop_with_empty_axes: 1 })) });
  });

  it('ReduceMean: axes attribute (opset 17), keepdims 0/1, all axes; axes input at opset 18', async () => {
    for (const [axes, keepdims] of [[[1], 1], [[0, 2], 0], [undefined, 0]] as const) {
      await check({
        inputs: { x: { dims: [2, 3, 4] } },
        build: (g, ins) => cube(g, g.op('ReduceMean', [cube(g, ins.x)], { axes: axes ? [...axes] : undefined, keepdims })),
      }, `axes ${axes} keepdims ${keepdims}`);
    }
    await check({
      inputs: { x: { dims: [2, 3, 4] } },
      build: (g, ins) => cube(g, g.op('ReduceMean', [cube(g, ins.x), g.int64s([-1])], { keepdims: 0 })),
      opset: 18,
    }, 'opset 18');
  });

  it('ReduceMean over a symbolic axis, at two sizes', async () => {
    const spec: CaseSpec = {
      inputs: { x: { dims: [2, 3], shape: ['n', 3] } },
      build: (g, ins) => cube(g, g.op('ReduceMean', [cube(g, ins.x)], { axes: [0], keepdims: 0 })),
    };
    for (const n of [2, 5]) expect((await gradCheck(spec, { x: [n, 3] })).relError, `n=${n}`).toBeLessThan(TOL);
  });

  it('ReduceMax / ReduceMin (distinct values: the gradient goes to the extreme element)', async () => {
    for (const op of ['ReduceMax', 'ReduceMin']) {
      for (const keepdims of [0, 1]) {
        await check({ inputs: { x: { dims: [2, 3, 4] } }, build: (g, ins) => cube(g, g.op(op, [ins.x], { axes: [1], keepdims })) }, `${op} ${keepdims}`);
      }
    }
  });

  it('Softmax and LogSoftmax on the last and a middle axis', async () => {
    for (const op of ['Softmax', 'LogSoftmax']) {
      for (const axis of [-1, 1]) {
        await check({ inputs: { x: { dims: [2, 3, 4] } }, build: (g, ins) => g.op(op, [ins.x], { axis }) }, `${op} axis ${axis}`);
      }
    }
  });
});

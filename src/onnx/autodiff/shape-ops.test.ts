// Finite-difference checks of the data-movement rules: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand,
// Concat, Split (an output left unused), Slice (negative/clamped starts, steps, axes) and Gather (repeated and
// negative indices, other axes, scalar index). float64 graphs, tolerance 1e-6.
import { describe, expect, it } from 'vitest';
import { gradCheck, type CaseSpec } from './gradcheck.ts';

const TOL = 1e-6;
const check = async (spec: CaseSpec, label = '') => expect((await gradCheck(spec)).relError, label).toBeLessThan(TOL);
// Multiplying by a non-uniform function of x keeps every rule's gradient distinct from a plain pass-through.
const wobble = (g: Parameters<CaseSpec['build']>[0], y: string) => g.op('Mul', [y, g.op('Sin', [y])]);

describe('shape-op gradients (float64 FD, tol 1e-6)', () => {
  it('Reshape (with 0 and −1), Flatten, Transpose', async () => {
    await check({ inputs: { x: { dims: [2, 3, 4] } }, build: (g, ins) => wobble(g, g.op('Reshape', [ins.x, g.int64s([0, -1, 2])])) });
    await check({ inputs: { x: { dims: [2, 3, 2] } }, build: (g, ins) => wobble(g, g.op('Flatten', [ins.x], { axis: 2 })) });
    await check({ inputs: { x: { dims: [2, 3, 4] } }, build: (g, ins) => wobble(g, g.op('Transpose', [ins.x], { perm: [2, 0, 1] })) });
    await check({ inputs: { x: { dims: [2, 3] } }, build: (g, ins) => wobble(g, g.op('Transpose', [ins.x])) });
  });

  it('Squeeze, Unsqueeze (axes as inputs, opset 13+), Expand', async () => {
    await check({ inputs: { x: { dims: [2, 1, 3, 1] } }, build: (g, ins) => wobble(g, g.op('Squeeze', [ins.x, g.int64s([1, -1])])) });
    await check({ inputs: { x: { dims: [2, 3] } }, build: (g, ins) => wobble(g, g.op('Unsqueeze', [ins.x, g.int64s([0, 3])])) });
    await check({ inputs: { x: { dims: [3, 1] } }, build: (g, ins) => wobble(g, g.op('Expand', [ins.x, g.int64s([2, 3, 4])])) });
  });

  it('Concat of three (one not differentiated), Split with an unused output', async () => {
    await check({
      inputs: { a: { dims: [2, 1, 3] }, b: { dims: [2, 3, 3] }, c: { dims: [2, 2, 3], wrt: false } },
      build: (g, ins) => wobble(g, g.op('Concat', [ins.a, ins.b, ins.c], { axis: -2 })),
    });
    await check({
      inputs: { x: { dims: [2, 6] } },
      build: (g, ins) => {
        const [p, , r] = g.node('Split', [ins.x, g.int64s([1, 2, 3])], { axis: 1 }, { outputs: 3 });
        return g.op('Concat', [wobble(g, p), r], { axis: 1 });
      },
    });
  });

  it('Slice: negative and clamped starts, steps 2 and 3, axes subset', async () => {
    const slice = (dims: number[], starts: number[], ends: number[], axes?: number[], steps?: number[]): CaseSpec => ({
      inputs: { x: { dims } },
      build: (g, ins) => {
        const args = [ins.x, g.int64s(starts), g.int64s(ends)];
        if (axes) args.push(g.int64s(axes));
        if (steps) args.push(g.int64s(steps));
        return wobble(g, g.op('Slice', args));
      },
    });
    await check(slice([4, 5], [1, 1], [3, 4]), 'basic');
    await check(slice([4, 5], [-3], [100], [1]), 'negative start, end past the dim');
    await check(slice([3, 7], [1], [7], [-1], [2]), 'step 2');
    await check(slice([2, 8, 3], [0, 1], [8, 3], [1, 2], [3, 1]), 'step 3 and an axis subset');
    await check(slice([3, 4], [-10], [2], [0]), 'start clamped to 0');
  });

  it('Gather with repeated and negative indices, on axis 0, 1, and a scalar index', async () => {
    const gather = (dims: number[], indices: number[], idxDims: number[], axis: number): CaseSpec => ({
      inputs: { x: { dims } },
      build: (g, ins) => wobble(g, g.op('Gather', [ins.x, g.constant(BigInt64Array.from(indices.map(BigInt)), idxDims)], { axis })),
    });
    await check(gather([4, 3], [0, 2, 2, -1], [4], 0), 'axis 0 repeated');
    await check(gather([2, 5, 3], [1, 4, 1, 0], [2, 2], 1), 'axis 1, 2-D indices');
    await check(gather([3, 4], [2], [], 1), 'scalar index');
  });

  it('Pad (constant mode, positive and negative pads) and Tile', async () => {
    await check({ inputs: { x: { dims: [2, 3] } }, build: (g, ins) => wobble(g, g.op('Pad', [ins.x, g.int64s([1, 0, 0, 2])])) }, 'pad');
    await check({ inputs: { x: { dims: [3, 4] } }, build: (g, ins) => wobble(g, g.op('Pad', [ins.x, g.int64s([-1, 1, 2, -2])])) }, 'crop');
    await check({ inputs: { x: { dims: [2, 3] } }, build: (g, ins) => wobble(g, g.op('Tile', [ins.x, g.int64s([2, 3])])) }, 'tile');
  });
});

// Finite-difference checks of the element-wise gradient rules, including broadcasting in both directions.
// float64 graphs (analytic and FD, h = 1e-6): tolerance 1e-6 relative to the largest gradient.
import { describe, expect, it } from 'vitest';
import { DataType } from '../proto.ts';
import { gradCheck, type CaseSpec } from './gradcheck.ts';

const TOL = 1e-6;
const positive = (r: () => number) => 0.5 + (r() + 1); // in [0.5, 2.5)

const binary = (op: string, a: number[], b: number[], bPositive = false): CaseSpec => ({
  inputs: { a: { dims: a }, b: { dims: b, values: bPositive ? positive : undefined } },
  build: (g, ins) => g.op(op, [ins.a, ins.b]),
});
const unary = (op: string, dims: number[], opts: { positive?: boolean; attrs?: Record<string, number> } = {}): CaseSpec => ({
  inputs: { x: { dims, values: opts.positive ? positive : undefined } },
  build: (g, ins) => g.op(op, [ins.x], opts.attrs),
});
const SHAPES = [[[2, 3], [2, 3]], [[2, 3, 4], [4]], [[2, 1, 4], [3, 1]], [[1], [2, 3]], [[3, 4], []]];

describe('element-wise gradients (float64 FD, tol 1e-6)', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    it(`${op} with broadcasting`, async () => {
      for (const [a, b] of SHAPES) {
        const r = await gradCheck(binary(op, a, b, op === 'Div'));
        expect(r.relError, `${op} [${a}] [${b}]`).toBeLessThan(TOL);
      }
    });
  }

  it('broadcasting decided at run time (two different symbolic dims, either of which may be 1)', async () => {
    for (const op of ['Add', 'Mul']) {
      const spec: CaseSpec = {
        inputs: { a: { dims: [1, 3], shape: ['n', 3] }, b: { dims: [1, 2, 1], shape: [2, 'm', 'k'] } },
        build: (g, ins) => g.op(op, [ins.a, ins.b]),
      };
      for (const [n, m, k] of [[4, 1, 3], [4, 4, 1], [1, 3, 3], [1, 1, 1]]) {
        const r = await gradCheck(spec, { a: [n, 3], b: [2, m, k] });
        expect(r.relError, `${op} n=${n} m=${m} k=${k}`).toBeLessThan(TOL);
      }
    }
  });

  it('Pow with a constant exponent (2, 3, 0.5, −1.5) and with the exponent as an input', async () => {
    for (const p of [2, 3, 0.5, -1.5]) {
      const spec: CaseSpec = { inputs: { x: { dims: [2, 3], values: positive } }, build: (g, ins, k) => g.op('Pow', [ins.x, k.scalar(p)]) };
      expect((await gradCheck(spec)).relError, `p=${p}`).toBeLessThan(TOL);
    }
    const both = await gradCheck({ inputs: { a: { dims: [2, 3], values: positive }, b: { dims: [3] } }, build: (g, ins) => g.op('Pow', [ins.a, ins.b]) });
    expect(both.relError).toBeLessThan(TOL);
    // an integer exponent on a negative base (x² of signed values)
    const neg = await gradCheck({ inputs: { x: { dims: [5] } }, build: (g, ins, k) => g.op('Pow', [ins.x, k.scalar(2)]) });
    expect(neg.relError).toBeLessThan(TOL);
  });

  const unaries: [string, boolean][] = [
    ['Neg', false], ['Sqrt', true], ['Exp', false], ['Log', true], ['Sigmoid', false], ['Tanh', false], ['Relu', false],
    ['Sin', false], ['Cos', false], ['Reciprocal', true], ['Abs', false], ['Identity', false], ['LeakyRelu', false],
  ];
  for (const [op, pos] of unaries) {
    it(op, async () => {
      expect((await gradCheck(unary(op, [3, 4], { positive: pos }))).relError).toBeLessThan(TOL);
    });
  }

  // ORT implements Erf for float32 only: float32 graphs, FD step 1e-2, tolerance 1e-3.
  it('Erf (float32, tol 1e-3)', async () => {
    const r = await gradCheck({ ...unary('Erf', [3, 4]), dtype: 'float32', fdDtype: 'float32', step: 1e-2 });
    expect(r.relError).toBeLessThan(1e-3);
  });

  // ORT has Softplus, Gelu and Mean for float32 only: those run in float32 (FD h=1e-2, tol 1e-3).
  it('Softplus, Gelu (opset 20, exact and tanh), Clip, Max/Min with broadcasting, Sum, Mean', async () => {
    const cases: [string, CaseSpec][] = [
      ['Softplus', unary('Softplus', [3, 4])],
      ['Gelu', { ...unary('Gelu', [3, 4]), opset: 20 }],
      ['Gelu tanh', { inputs: { x: { dims: [3, 4] } }, build: (g, ins) => g.op('Gelu', [ins.x], { approximate: 'tanh' }), opset: 20 }],
      ['Clip', { inputs: { x: { dims: [3, 4] } }, build: (g, ins, k) => g.op('Clip', [ins.x, k.scalar(-0.4), k.scalar(0.5)]) }],
      ['Clip max only', { inputs: { x: { dims: [3, 4] } }, build: (g, ins, k) => g.op('Clip', [ins.x, '', k.scalar(0.2)]) }],
      ['Max', binary('Max', [2, 3], [3])],
      ['Min', binary('Min', [2, 1], [2, 3])],
      ['Sum', { inputs: { a: { dims: [2, 3] }, b: { dims: [3] }, c: { dims: [2, 1] } }, build: (g, ins) => g.op('Sum', [ins.a, ins.b, ins.c]) }],
      ['Mean', { inputs: { a: { dims: [2, 3] }, b: { dims: [3] } }, build: (g, ins) => g.op('Mean', [ins.a, ins.b]) }],
    ];
    for (const [name, spec] of cases) {
      const f32 = ['Gelu', 'Gelu tanh', 'Softplus', 'Mean'].includes(name) ? { dtype: 'float32', fdDtype: 'float32', step: 1e-2 } as const : {};
      expect((await gradCheck({ ...spec, ...f32 })).relError, name).toBeLessThan(f32.dtype ? 1e-3 : TOL);
    }
  });

  it('Where with a constant condition and broadcasting branches', async () => {
    const spec: CaseSpec = {
      inputs: { a: { dims: [2, 3] }, b: { dims: [3] } },
      build: (g, ins) => g.op('Where', [g.constant(Uint8Array.from([1, 0, 1, 0, 0, 1]), [2, 3]), ins.a, ins.b]),
    };
    expect((await gradCheck(spec)).relError).toBeLessThan(TOL);
  });

  it('Cast round trip through float32 inside a float64 graph, and SiLU x·σ(x)', async () => {
    const cast: CaseSpec = {
      inputs: { x: { dims: [4] } },
      build: (g, ins) => g.op('Mul', [g.op('Cast', [g.op('Cast', [ins.x], { to: DataType.FLOAT })], { to: DataType.DOUBLE }), g.op('Exp', [ins.x])]),
      step: 1e-3,
    };
    expect((await gradCheck(cast)).relError).toBeLessThan(1e-5);
    const silu: CaseSpec = { inputs: { x: { dims: [2, 5] } }, build: (g, ins) => g.op('Mul', [ins.x, g.op('Sigmoid', [ins.x])]) };
    expect((await gradCheck(silu)).relError).toBeLessThan(TOL);
  });

  it('a value used by several nodes accumulates its gradient (float32 graph vs float64 FD, tol 1e-5)', async () => {
    const spec: CaseSpec = {
      inputs: { x: { dims: [3, 2] }, w: { dims: [2] } },
      build: (g, ins) => {
        const t = g.op('Tanh', [g.op('Mul', [ins.x, ins.w])]);
        return g.op('Add', [g.op('Mul', [t, ins.x]), g.op('Sin', [g.op('Mul', [t, ins.w])])]);
      },
      dtype: 'float32',
    };
    expect((await gradCheck(spec)).relError).toBeLessThan(1e-5);
  });
});

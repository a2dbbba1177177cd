// Finite-difference checks of MatMul (2-D, batched, broadcast batch dims, 1-D operands), Gemm (alpha, beta,
// transA/transB, broadcast C) and the LoRA form y = x·W + scale·(x·Aᵀ)·Bᵀ. float64 graphs, tolerance 1e-6.
import { describe, expect, it } from 'vitest';
import { gradCheck, type CaseSpec } from './gradcheck.ts';

const TOL = 1e-6;

describe('MatMul / Gemm gradients (float64 FD, tol 1e-6)', () => {
  it('MatMul: 2-D, batched, broadcast batch dims, 1-D operands', async () => {
    const shapes = [
      [[3, 4], [4, 2]], [[2, 3, 4], [2, 4, 5]], [[2, 3, 4], [4, 5]], [[3, 4], [2, 4, 5]],
      [[2, 1, 3, 4], [3, 4, 2]], [[4], [4, 3]], [[2, 3, 4], [4]], [[4], [4]], [[4], [2, 4, 3]],
    ];
    for (const [a, b] of shapes) {
      const r = await gradCheck({ inputs: { a: { dims: a }, b: { dims: b } }, build: (g, ins) => g.op('MatMul', [ins.a, ins.b]) });
      expect(r.relError, `[${a}]·[${b}]`).toBeLessThan(TOL);
    }
  });

  it('Gemm with alpha, beta, transA, transB and broadcast C', async () => {
    for (const transA of [0, 1]) {
      for (const transB of [0, 1]) {
        for (const c of [[2, 5], [5], [1, 5]]) {
          const spec: CaseSpec = {
            inputs: { a: { dims: transA ? [3, 2] : [2, 3] }, b: { dims: transB ? [5, 3] : [3, 5] }, c: { dims: c } },
            build: (g, ins) => g.op('Gemm', [ins.a, ins.b, ins.c], { alpha: 0.7, beta: 1.3, transA, transB }),
          };
          const r = await gradCheck(spec);
          expect(r.relError, `transA=${transA} transB=${transB} C=[${c}]`).toBeLessThan(TOL);
        }
      }
    }
    const noC = await gradCheck({ inputs: { a: { dims: [2, 3] }, b: { dims: [3, 4] } }, build: (g, ins) => g.op('Gemm', [ins.a, ins.b], { transB: 0 }) });
    expect(noC.relError).toBeLessThan(TOL);
  });

  it('LoRA: y = x·W + scale·(x·Aᵀ)·Bᵀ with W an initializer, A and B inputs', async () => {
    const spec: CaseSpec = {
      inputs: { x: { dims: [2, 3, 6] }, A: { dims: [2, 6] }, B: { dims: [5, 2] } },
      build: (g, ins, k) => {
        const w = k.tensor([6, 5], k.rand);
        const base = g.op('MatMul', [ins.x, w]);
        const down = g.op('MatMul', [ins.x, g.op('Transpose', [ins.A], { perm: [1, 0] })]);
        const up = g.op('MatMul', [down, g.op('Transpose', [ins.B], { perm: [1, 0] })]);
        return g.op('Add', [base, g.op('Mul', [up, k.scalar(0.5)])]);
      },
    };
    expect((await gradCheck(spec)).relError).toBeLessThan(TOL);
  });
});

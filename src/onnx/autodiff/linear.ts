// Gradient rules for MatMul (numpy semantics: 1-D operands promoted, batch dims broadcast) and Gemm.
// MatMul: Y = A·B  ⇒  dA = dY·Bᵀ, dB = Aᵀ·dY, then summed over broadcast batch dims.
import { attrFloat, attrInt } from './attributes.ts';
import type { Emitter } from './emitter.ts';
import { dy0, type GradRule } from './rule.ts';

/** Swaps the last two axes. */
function swapLast(e: Emitter, x: string): string {
  const r = e.rank(x);
  const perm = Array.from({ length: r }, (_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return e.transpose(x, perm);
}

/**
 * dW for a 2-D weight under batched activations p [..., K] and g [..., N]: flatten the batch dims and take one
 * Gemm with transA (pᵀ·g), instead of a batched MatMul whose [..., K, N] result must then be summed.
 */
function flatWeightGrad(e: Emitter, p: string, g: string): string {
  const rows = (v: string) => e.op('Reshape', [v, e.op('Concat', [e.int64s([-1]), e.sizes(v, [e.rank(v) - 1])], { axis: 0 })]);
  return e.op('Gemm', [rows(p), rows(g)], { transA: 1 });
}

const matmul: GradRule = (a) => {
  const { e } = a;
  let g = dy0(a);
  let [p, q] = a.x;
  // Promote 1-D operands as MatMul does, so the 2-D formulas apply; the promoted axis is removed afterwards.
  const pVec = e.rank(p) === 1;
  const qVec = e.rank(q) === 1;
  if (pVec) {
    p = e.unsqueeze(p, [0]);
    g = e.unsqueeze(g, [e.rank(g) - (qVec ? 0 : 1)]);
  }
  if (qVec) {
    q = e.unsqueeze(q, [1]);
    g = e.unsqueeze(g, [e.rank(g)]);
  }
  let dp = a.needs[0] ? e.unbroadcast(e.op('MatMul', [g, swapLast(e, q)]), p) : null;
  let dq = a.needs[1] ? (e.rank(q) === 2 && e.rank(p) > 2 ? flatWeightGrad(e, p, g) : e.unbroadcast(e.op('MatMul', [swapLast(e, p), g]), q)) : null;
  if (dp && pVec) dp = e.squeeze(dp, [0]);
  if (dq && qVec) dq = e.squeeze(dq, [1]);
  return [dp, dq];
};

// Y = alpha·op(A)·op(B) + beta·C with op = optional transpose; each gradient is itself one Gemm.
const gemm: GradRule = (a) => {
  const { e, node, x } = a;
  const g = dy0(a);
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const tA = attrInt(node, 'transA', 0);
  const tB = attrInt(node, 'transB', 0);
  const gm = (p: string, q: string, transA: number, transB: number) =>
    e.op('Gemm', [p, q], { alpha: { float: alpha }, transA, transB });
  const dA = !a.needs[0] ? null : tA ? gm(x[1], g, tB, 1) : gm(g, x[1], 0, tB ? 0 : 1);
  const dB = !a.needs[1] ? null : tB ? gm(g, x[0], 1, tA) : gm(x[0], g, tA ? 0 : 1, 0);
  const dC = x[2] && a.needs[2] ? e.unbroadcast(beta === 1 ? g : e.op('Mul', [g, e.scalar(beta, g)]), x[2]) : null;
  return [dA, dB, dC];
};

export const linearRules: Record<string, GradRule> = { MatMul: matmul, Gemm: gemm };

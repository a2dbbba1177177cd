// Finite-difference checks of LayerNormalization, InstanceNormalization and group normalisation: the decomposed
// forms a model builder uses at opset 17 (Reshape → InstanceNormalization → Reshape → affine, and the explicit
// ReduceMean/Sub/Pow/Sqrt/Div form), plus GroupNormalization itself at opsets 18 and 21.
// LayerNormalization runs in float64 in ORT (tol 1e-6); InstanceNormalization only in float32 (FD h=1e-2, tol 2e-3).
import { describe, expect, it } from 'vitest';
import { gradCheck, type CaseSpec } from './gradcheck.ts';

const F32: Partial<CaseSpec> = { dtype: 'float32', fdDtype: 'float32', step: 1e-2 };

describe('normalization gradients', () => {
  it('LayerNormalization over the last axis and over two axes, with and without bias (float64, tol 1e-6)', async () => {
    const specs: CaseSpec[] = [
      { inputs: { x: { dims: [2, 3, 5] }, s: { dims: [5] }, b: { dims: [5] } }, build: (g, ins) => g.op('LayerNormalization', [ins.x, ins.s, ins.b], { epsilon: 1e-5 }) },
      { inputs: { x: { dims: [2, 3, 4] }, s: { dims: [3, 4] } }, build: (g, ins) => g.op('LayerNormalization', [ins.x, ins.s], { axis: 1 }) },
    ];
    for (const spec of specs) expect((await gradCheck(spec)).relError).toBeLessThan(1e-6);
  });

  it('InstanceNormalization (float32, tol 2e-3)', async () => {
    const spec: CaseSpec = {
      inputs: { x: { dims: [2, 3, 4, 3] }, s: { dims: [3] }, b: { dims: [3] } },
      build: (g, ins) => g.op('InstanceNormalization', [ins.x, ins.s, ins.b], { epsilon: 1e-5 }),
      ...F32,
    };
    expect((await gradCheck(spec)).relError).toBeLessThan(2e-3);
  });

  it('group norm decomposed with InstanceNormalization (float32, tol 2e-3)', async () => {
    const [n, c, groups] = [2, 4, 2];
    const spec: CaseSpec = {
      inputs: { x: { dims: [n, c, 3, 3] }, s: { dims: [c] }, b: { dims: [c] } },
      build: (g, ins, k) => {
        const grouped = g.op('Reshape', [ins.x, g.int64s([0, groups, -1])]);
        const normed = g.op('InstanceNormalization', [grouped, k.tensor([groups], () => 1), k.tensor([groups], () => 0)], { epsilon: 1e-5 });
        const back = g.op('Reshape', [normed, g.op('Shape', [ins.x])]);
        const scale = g.op('Unsqueeze', [ins.s, g.int64s([1, 2])]);
        return g.op('Add', [g.op('Mul', [back, scale]), g.op('Unsqueeze', [ins.b, g.int64s([1, 2])])]);
      },
      ...F32,
    };
    expect((await gradCheck(spec)).relError).toBeLessThan(2e-3);
  });

  it('group norm decomposed into ReduceMean/Sub/Pow/Sqrt/Div (float64, tol 1e-6)', async () => {
    const spec: CaseSpec = {
      inputs: { x: { dims: [2, 4, 2, 3] }, s: { dims: [4, 1, 1] } },
      build: (g, ins, k) => {
        const grouped = g.op('Reshape', [ins.x, g.int64s([0, 2, -1])]);
        const mean = g.op('ReduceMean', [grouped], { axes: [2] });
        const centered = g.op('Sub', [grouped, mean]);
        const variance = g.op('ReduceMean', [g.op('Pow', [centered, k.scalar(2)])], { axes: [2] });
        const normed = g.op('Div', [centered, g.op('Sqrt', [g.op('Add', [variance, k.scalar(1e-5)])])]);
        return g.op('Mul', [g.op('Reshape', [normed, g.op('Shape', [ins.x])]), ins.s]);
      },
    };
    expect((await gradCheck(spec)).relError).toBeLessThan(1e-6);
  });

  // ORT rejects GroupNormalization at opset 17 (it is an opset-18 op); 18–20 take per-group scale/bias [G], 21 per
  // channel [C]. ORT's opset-21 function computes in float32 (stash_type) even for double inputs, so FD in float64
  // is no better there: that case runs in float32.
  it('GroupNormalization at opset 18 (float64, tol 1e-6) and 21 (float32, tol 2e-3)', async () => {
    for (const opset of [18, 21]) {
      const c = opset < 21 ? 2 : 4;
      const spec: CaseSpec = {
        inputs: { x: { dims: [2, 4, 3, 2] }, s: { dims: [c] }, b: { dims: [c] } },
        build: (g, ins) => g.op('GroupNormalization', [ins.x, ins.s, ins.b], { num_groups: 2, epsilon: 1e-5 }),
        opset,
        ...(opset < 21 ? {} : F32),
      };
      expect((await gradCheck(spec)).relError, `opset ${opset}`).toBeLessThan(opset < 21 ? 1e-6 : 2e-3);
    }
  });
});

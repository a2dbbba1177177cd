// Finite-difference checks of Resize nearest upsampling (PyTorch's asymmetric/floor export and ONNX's default
// half_pixel/round_prefer_floor, factors 2 and 3), and the refusal of modes that are not block copies.
// Resize has no float64 kernel in ORT's CPU EP: float32 graphs, FD h=1e-2, tol 2e-3.
import { describe, expect, it } from 'vitest';
import { buildGradientModel } from './index.ts';
import { buildCase, gradCheck, type CaseSpec } from './gradcheck.ts';

const resize = (dims: number[], scales: number[], attrs: Record<string, string>): CaseSpec => ({
  inputs: { x: { dims } },
  build: (g, ins) => {
    const y = g.op('Resize', [ins.x, '', g.constant(Float32Array.from(scales))], attrs);
    return g.op('Mul', [y, g.op('Sin', [y])]);
  },
  dtype: 'float32', fdDtype: 'float32', step: 1e-2,
});

describe('Resize nearest gradients (float32, tol 2e-3)', () => {
  it('2× asymmetric/floor (PyTorch export), 2× and 3× half_pixel, a symbolic input', async () => {
    const cases: [number[], number[], Record<string, string>][] = [
      [[1, 2, 3, 2], [1, 1, 2, 2], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }],
      [[2, 1, 2, 3], [1, 1, 2, 2], { mode: 'nearest' }],
      [[1, 2, 2, 2], [1, 1, 3, 1], { mode: 'nearest' }],
    ];
    for (const [dims, scales, attrs] of cases) expect((await gradCheck(resize(dims, scales, attrs))).relError, `${scales}`).toBeLessThan(2e-3);
    const spec = resize([1, 2, 3, 2], [1, 1, 2, 2], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    spec.inputs.x.shape = ['n', 2, 'h', 'w'];
    expect((await gradCheck(spec, { x: [2, 2, 2, 3] })).relError).toBeLessThan(2e-3);
  });

  it('refuses linear mode and non-block-copy nearest modes, naming the node', () => {
    const linear = buildCase(resize([1, 1, 2, 2], [1, 1, 2, 2], { mode: 'linear' }), 'float32');
    expect(() => buildGradientModel(linear, { loss: 'loss', wrt: ['x'] })).toThrow(/Resize node "\/Resize".*linear/);
    const odd = buildCase(resize([1, 1, 2, 2], [1, 1, 2, 2], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'round_prefer_ceil' }), 'float32');
    expect(() => buildGradientModel(odd, { loss: 'loss', wrt: ['x'] })).toThrow(/not a block copy/);
  });
});

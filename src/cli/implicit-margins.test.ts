// The statistics over implicit margins, against values worked by hand: the DPO graph's accuracy (ties ½) and
// softplus loss, and Pearson's correlation.
import { describe, expect, it } from 'vitest';
import { correlation, marginSummary } from './implicit-margins.ts';

describe('implicit margin statistics', () => {
  it('accuracy counts positive margins, ties half; loss is softplus(−β·m) averaged', () => {
    const { accuracy, loss } = marginSummary(Float64Array.from([0.002, -0.001, 0]), 500);
    expect(accuracy).toBeCloseTo(1.5 / 3, 12);
    // softplus(−1) = ln(1 + e^−1), softplus(0.5) = ln(1 + e^0.5), softplus(0) = ln 2
    expect(loss).toBeCloseTo((Math.log1p(Math.exp(-1)) + Math.log1p(Math.exp(0.5)) + Math.LN2) / 3, 12);
    // far in the tail softplus(z) = z to double precision; the stable form must not overflow
    expect(marginSummary(Float64Array.from([-10]), 500).loss).toBeCloseTo(5000, 9);
  });

  it('correlation is ±1 for affine copies, 0 for orthogonal centred series, and refuses unequal lengths', () => {
    const a = Float64Array.from([1, 2, 3, 4]);
    expect(correlation(a, a.map((x) => 3 * x - 7))).toBeCloseTo(1, 12);
    expect(correlation(a, a.map((x) => -0.5 * x))).toBeCloseTo(-1, 12);
    expect(correlation(Float64Array.from([1, -1, 1, -1]), Float64Array.from([1, 1, -1, -1]))).toBeCloseTo(0, 12);
    expect(() => correlation(a, Float64Array.from([1, 2]))).toThrow(/one length/);
  });
});

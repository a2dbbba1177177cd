import { describe, expect, it } from 'vitest';
import { combineCfg, guidanceScale } from './cfg.ts';

describe('CFG combine (paper convention ε = (ω+1)·ε_pos − ω·ε_neg)', () => {
  it('matches diffusers form ε_neg + g·(ε_pos − ε_neg) with g = ω + 1 (float64 reference, tol 1e-6)', () => {
    const pos = Float32Array.from([0.5, -1.25, 2, 0]);
    const neg = Float32Array.from([0.25, 1, -3, 7]);
    for (const omega of [0, 1, 6.5]) {
      const got = combineCfg(pos, neg, omega);
      const g = guidanceScale(omega);
      pos.forEach((p, i) => expect(got[i]).toBeCloseTo(neg[i] + g * (p - neg[i]), 6));
    }
  });
  it('with ω = 0 returns the positive branch exactly', () => {
    const pos = Float32Array.from([0.1, 0.2]);
    expect([...combineCfg(pos, Float32Array.from([9, 9]), 0)]).toEqual([...pos]);
  });
  it('rejects branches of different sizes', () => {
    expect(() => combineCfg(new Float32Array(2), new Float32Array(3), 1)).toThrow(/differ in size/);
  });
});

// Bootstrap intervals: the quantile matches numpy's default, the interval of a mean matches the normal-theory one on
// a large sample, and resampling is by prompt (identical seeds of one prompt add no information).
import { describe, expect, it } from 'vitest';
import { createRng } from '../world/random.ts';
import { bootstrapInterval, groupByPrompt, quantile } from './bootstrap.ts';

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('bootstrap over prompts', () => {
  it('quantile is numpy.quantile (linear, type 7)', () => {
    // numpy.quantile([1, 2, 3, 4], [0, 0.25, 0.5, 0.9, 1]) = [1, 1.75, 2.5, 3.7, 4]
    expect([0, 0.25, 0.5, 0.9, 1].map((q) => quantile([1, 2, 3, 4], q))).toEqual([1, 1.75, 2.5, expect.closeTo(3.7, 12), 4]);
  });

  it('the 95 % interval of a mean of 400 normal draws is mean ± 1.96·s/√n within 10 % of its half-width', () => {
    const rng = createRng(5);
    const xs = Array.from({ length: 400 }, () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng()));
    const m = mean(xs), s = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
    const half = (1.96 * s) / Math.sqrt(xs.length);
    const [lo, hi] = bootstrapInterval(xs.map((_, i) => [i]), (idx) => mean(idx.map((i) => xs[i])));
    expect(Math.abs((hi - lo) / 2 - half) / half).toBeLessThan(0.1);
    expect(Math.abs((hi + lo) / 2 - m)).toBeLessThan(0.1 * half);
  });

  it('resamples prompts, not samples: four identical seeds per prompt give the same interval as one', () => {
    const rng = createRng(9);
    const perPrompt = Array.from({ length: 30 }, () => rng());
    const one = bootstrapInterval(groupByPrompt(perPrompt.map((_, p) => `p${p}`)), (idx) => mean(idx.map((i) => perPrompt[i])));
    const prompts = perPrompt.flatMap((_, p) => [`p${p}`, `p${p}`, `p${p}`, `p${p}`]);
    const values = perPrompt.flatMap((v) => [v, v, v, v]);
    const four = bootstrapInterval(groupByPrompt(prompts), (idx) => mean(idx.map((i) => values[i])));
    expect(four[0]).toBeCloseTo(one[0], 12);
    expect(four[1]).toBeCloseTo(one[1], 12);
  });

  it('refuses no prompts and a level outside (0, 1)', () => {
    expect(() => bootstrapInterval([], () => 0)).toThrow(/at least one prompt/);
    expect(() => bootstrapInterval([[0]], () => 0, { level: 1 })).toThrow(/level/);
  });
});

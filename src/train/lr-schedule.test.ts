// The lr schedules against diffusers.optimization's lambdas (get_constant_schedule_with_warmup,
// get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup with num_cycles 0.5), evaluated by hand at chosen steps.
import { describe, expect, it } from 'vitest';
import { checkLrSchedule, lrFactor } from './lr-schedule.ts';

describe('lr schedules (diffusers get_scheduler)', () => {
  it('constant is 1 from the first step; warm-up starts at 0 (LambdaLR at step 0) and rises linearly', () => {
    expect([0, 5, 99].map((s) => lrFactor('constant', s, 10, 100))).toEqual([1, 1, 1]);
    expect([0, 2, 4, 9].map((s) => lrFactor('constant_with_warmup', s, 4, 10))).toEqual([0, 0.5, 1, 1]);
  });

  it('linear: (T − s) / (T − W) after warm-up, 0 at the end', () => {
    expect([1, 2, 6, 10, 12].map((s) => lrFactor('linear', s, 2, 10))).toEqual([0.5, 1, 0.5, 0, 0]);
  });

  it('cosine: ½(1 + cos(π·progress)), progress = (s − W) / (T − W)', () => {
    expect(lrFactor('cosine', 1, 2, 10)).toBe(0.5); // warm-up
    expect(lrFactor('cosine', 2, 2, 10)).toBe(1);
    expect(lrFactor('cosine', 4, 2, 10)).toBeCloseTo(0.5 * (1 + Math.SQRT1_2), 15); // progress ¼
    expect(lrFactor('cosine', 6, 2, 10)).toBeCloseTo(0.5, 15);
    expect(lrFactor('cosine', 10, 2, 10)).toBeCloseTo(0, 15);
  });

  it('refuses an unknown schedule and a bad warm-up with the value named', () => {
    expect(() => checkLrSchedule('polynomial', 0)).toThrow(/lr schedule must be one of constant, constant_with_warmup, linear, cosine, got polynomial/);
    expect(() => checkLrSchedule('linear', -1)).toThrow(/warm-up steps must be a whole number ≥ 0, got -1/);
  });
});

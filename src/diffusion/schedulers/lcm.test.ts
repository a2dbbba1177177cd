// Port of diffusers tests/schedulers/test_scheduler_lcm.py: fixtures, reference sums/means and tolerances are
// diffusers'; the multistep loop draws its noise from torch.manual_seed(0), reproduced by our generator.
import { describe, expect, it } from 'vitest';
import { createGenerator } from '../noise/index.ts';
import { createLcm } from './lcm.ts';
import { dummyModel, dummySampleDeter, meanAbs, sumAbs } from './testing.ts';

const base = { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', prediction_type: 'epsilon' } as const;

function fullLoop(steps: number) {
  const s = createLcm(base);
  const generator = createGenerator(0);
  s.setTimesteps(steps);
  let x = dummySampleDeter();
  for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x, { generator }).prevSample;
  return x;
}

describe('LCM (diffusers test_scheduler_lcm)', () => {
  it('timesteps (4 steps of the 50-step distillation grid)', () => {
    const s = createLcm(base);
    s.setTimesteps(4);
    expect(s.timesteps).toEqual([999, 759, 499, 259]);
  });
  it('full loop, one step', () => {
    const x = fullLoop(1);
    expect(Math.abs(sumAbs(x) - 18.7097)).toBeLessThan(1e-3);
    expect(Math.abs(meanAbs(x) - 0.0244)).toBeLessThan(1e-3);
  });
  it('full loop, ten steps', () => {
    const x = fullLoop(10);
    expect(Math.abs(sumAbs(x) - 197.7616)).toBeLessThan(1e-3);
    expect(Math.abs(meanAbs(x) - 0.2575)).toBeLessThan(1e-3);
  });
  it('rejects more steps than the distillation grid', () => expect(() => createLcm(base).setTimesteps(51)).toThrow(/\[1, 50\]/));
});

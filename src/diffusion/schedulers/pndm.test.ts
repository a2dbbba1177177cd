// Port of diffusers tests/schedulers/test_scheduler_pndm.py: diffusers' fixtures, reference sums/means, tolerances.
import { describe, expect, it } from 'vitest';
import { createPndm } from './pndm.ts';
import type { SchedulerConfig } from './types.ts';
import { dummyModel, dummySampleDeter, meanAbs, sumAbs } from './testing.ts';

const base: SchedulerConfig = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear' };

function fullLoop(extra: SchedulerConfig = {}) {
  const s = createPndm({ ...base, ...extra });
  s.setTimesteps(10);
  let x = dummySampleDeter();
  for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x).prevSample;
  return x;
}

describe('PNDM (diffusers test_scheduler_pndm)', () => {
  it('steps_offset=1 timesteps', () => {
    const s = createPndm({ ...base, steps_offset: 1 });
    s.setTimesteps(10);
    expect(s.timesteps).toEqual([901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1]);
  });

  it.each([
    ['no noise', {}, 198.1318, 0.258],
    ['v_prediction', { prediction_type: 'v_prediction' }, 67.3986, 0.0878],
    ['set_alpha_to_one', { set_alpha_to_one: true, beta_start: 0.01 }, 230.0399, 0.2995],
    ['no set_alpha_to_one', { set_alpha_to_one: false, beta_start: 0.01 }, 186.9482, 0.2434],
  ] as const)('full loop %s', (_n, extra, sum, mean) => {
    const x = fullLoop(extra as SchedulerConfig);
    expect(Math.abs(sumAbs(x) - sum)).toBeLessThan(1e-2);
    expect(Math.abs(meanAbs(x) - mean)).toBeLessThan(1e-3);
  });

  it('27 steps (power of 3) runs its first PRK steps', () => {
    const s = createPndm(base);
    s.setTimesteps(27);
    let x = dummySampleDeter();
    for (const t of s.timesteps.slice(0, 2)) x = s.step(x.map((v) => v * 0.1), t, x).prevSample;
    expect(x.every(Number.isFinite)).toBe(true);
  });

  it('skip_prk_steps (Stable Diffusion config) gives PLMS timesteps with the repeated warm-up step', () => {
    const s = createPndm({ ...base, skip_prk_steps: true, steps_offset: 1 });
    s.setTimesteps(5);
    expect(s.timesteps).toEqual([801, 601, 601, 401, 201, 1]);
    let x = dummySampleDeter();
    for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x).prevSample;
    expect(x.every(Number.isFinite)).toBe(true);
  });

  it('rejects sample prediction', () => expect(() => createPndm({ prediction_type: 'sample' })).toThrow(/prediction_type/));
});

// Port of diffusers tests/schedulers/test_scheduler_ddim.py: reference values and tolerances are diffusers' own.
import { describe, expect, it } from 'vitest';
import { createDdim } from './ddim.ts';
import type { SchedulerConfig } from './types.ts';
import { dummyModel, dummyNoiseDeter, dummySampleDeter, meanAbs, sumAbs } from './testing.ts';

const base: SchedulerConfig = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear', clip_sample: true };

function fullLoop(extra: SchedulerConfig = {}) {
  const s = createDdim({ ...base, ...extra });
  s.setTimesteps(10);
  let x = dummySampleDeter();
  for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x, { eta: 0 }).prevSample;
  return x;
}

describe('DDIM (diffusers test_scheduler_ddim)', () => {
  it('steps_offset=1 timesteps', () => {
    const s = createDdim({ ...base, steps_offset: 1 });
    s.setTimesteps(5);
    expect(s.timesteps).toEqual([801, 601, 401, 201, 1]);
  });

  it('variance', () => {
    const s = createDdim(base);
    expect(Math.abs(s.variance(0, 0) - 0)).toBeLessThan(1e-5);
    expect(Math.abs(s.variance(420, 400) - 0.14771)).toBeLessThan(1e-5);
    expect(Math.abs(s.variance(980, 960) - 0.3246)).toBeLessThan(1e-5);
    expect(Math.abs(s.variance(487, 486) - 0.00979)).toBeLessThan(1e-5);
    expect(Math.abs(s.variance(999, 998) - 0.02)).toBeLessThan(1e-5);
  });

  it.each([
    ['no noise', {}, 172.0067, 0.223967],
    ['v_prediction', { prediction_type: 'v_prediction' }, 52.5302, 0.0684],
    ['set_alpha_to_one', { set_alpha_to_one: true, beta_start: 0.01 }, 149.8295, 0.1951],
    ['no set_alpha_to_one', { set_alpha_to_one: false, beta_start: 0.01 }, 149.0784, 0.1941],
  ] as const)('full loop %s', (_n, extra, sum, mean) => {
    const x = fullLoop(extra as SchedulerConfig);
    expect(Math.abs(sumAbs(x) - sum)).toBeLessThan(1e-2);
    expect(Math.abs(meanAbs(x) - mean)).toBeLessThan(1e-3);
  });

  it('full loop with noise (img2img from step 8)', () => {
    const s = createDdim(base);
    s.setTimesteps(10);
    const ts = s.timesteps.slice(8);
    let x = s.addNoise(dummySampleDeter(), dummyNoiseDeter(), ts[0]);
    for (const t of ts) x = s.step(dummyModel(x, t), t, x, { eta: 0 }).prevSample;
    expect(Math.abs(sumAbs(x) - 354.5418)).toBeLessThan(1e-2);
    expect(Math.abs(meanAbs(x) - 0.4616)).toBeLessThan(1e-3);
  });

  it('timestep spacings', () => {
    const s = createDdim({ ...base, timestep_spacing: 'trailing' });
    s.setTimesteps(4);
    expect(s.timesteps).toEqual([999, 749, 499, 249]);
    const l = createDdim({ ...base, timestep_spacing: 'linspace' });
    l.setTimesteps(4);
    expect(l.timesteps).toEqual([999, 666, 333, 0]);
  });

  it('rejects bad input', () => {
    expect(() => createDdim({ beta_schedule: 'cubic' as never })).toThrow(/beta_schedule/);
    expect(() => createDdim({ num_train_timesteps: '1000' as never })).toThrow(/num_train_timesteps/);
    expect(() => createDdim({ num_train_timesteps: 1e9 })).toThrow(/num_train_timesteps must be an integer in/);
    expect(() => createDdim({ beta_end: 1.5 })).toThrow(/beta_end must be in \(0, 1\)/);
    expect(() => createDdim({ trained_betas: [0.1, 'x'] as never })).toThrow(/trained_betas/);
    expect(() => createDdim({ trained_betas: [0.1, 0.2] })).toThrow(/trained_betas has 2 entries/);
    expect(() => createDdim({ steps_offset: -1 })).toThrow(/steps_offset/);
    const s = createDdim(base);
    expect(() => s.step(new Float32Array(4), 1, new Float32Array(4))).toThrow(/setTimesteps/);
    s.setTimesteps(10);
    expect(() => s.step(new Float32Array(4), 1, new Float32Array(5))).toThrow(/lengths differ/);
    expect(() => s.setTimesteps(1001)).toThrow(/larger than/);
    expect(() => s.step(new Float32Array(4), 901, new Float32Array(4), { eta: 1 })).toThrow(/generator/);
  });
});

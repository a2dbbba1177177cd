// Port of diffusers tests/schedulers/test_scheduler_dpm_multi.py (DPMSolverMultistepScheduler): diffusers'
// fixtures, reference means/sums and tolerances.
import { describe, expect, it } from 'vitest';
import { createGenerator } from '../noise/index.ts';
import { createDpmMultistep } from './dpm-multistep.ts';
import type { SchedulerConfig } from './types.ts';
import { dummyModel, dummyNoiseDeter, dummySampleDeter, meanAbs, sumAbs } from './testing.ts';

const base: SchedulerConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear', solver_order: 2,
  prediction_type: 'epsilon', thresholding: false, sample_max_value: 1.0, algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint', lower_order_final: false, euler_at_final: false, lambda_min_clipped: -Infinity,
  variance_type: null, final_sigmas_type: 'sigma_min',
};

function fullLoop(extra: SchedulerConfig = {}, batchSize = 4) {
  const s = createDpmMultistep({ ...base, ...extra });
  s.setTimesteps(10);
  const generator = createGenerator(0);
  let x = dummySampleDeter();
  for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x, { generator, batchSize }).prevSample;
  return x;
}

describe('DPM-Solver++ multistep (diffusers test_scheduler_dpm_multi)', () => {
  it('full loop', () => expect(Math.abs(meanAbs(fullLoop()) - 0.3301)).toBeLessThan(1e-3));
  it('full loop v_prediction', () => expect(Math.abs(meanAbs(fullLoop({ prediction_type: 'v_prediction' })) - 0.2251)).toBeLessThan(1e-3));
  it('full loop Karras + v_prediction', () => {
    expect(Math.abs(meanAbs(fullLoop({ prediction_type: 'v_prediction', use_karras_sigmas: true })) - 0.2096)).toBeLessThan(1e-3);
  });
  it('full loop Lu lambdas + v_prediction', () => {
    expect(Math.abs(meanAbs(fullLoop({ prediction_type: 'v_prediction', use_lu_lambdas: true })) - 0.1554)).toBeLessThan(1e-3);
  });
  it('full loop with dynamic thresholding', () => {
    const x = fullLoop({ thresholding: true, dynamic_thresholding_ratio: 0.87, sample_max_value: 0.5 });
    expect(Math.abs(meanAbs(x) - 1.1364)).toBeLessThan(1e-3);
  });

  it('full loop with noise (img2img from step 5)', () => {
    const s = createDpmMultistep(base);
    s.setTimesteps(10);
    const ts = s.timesteps.slice(5);
    let x = s.addNoise(dummySampleDeter(), dummyNoiseDeter(), ts[0]);
    for (const t of ts) x = s.step(dummyModel(x, t), t, x).prevSample;
    expect(Math.abs(sumAbs(x) - 318.4111)).toBeLessThan(1e-2);
    expect(Math.abs(meanAbs(x) - 0.4146)).toBeLessThan(1e-3);
  });

  it('every order, solver type and prediction type runs without NaN (test_solver_order_and_type)', () => {
    for (const algorithm_type of ['dpmsolver++', 'sde-dpmsolver++'] as const)
      for (const solver_type of ['midpoint', 'heun'] as const)
        for (const solver_order of [1, 2, 3])
          for (const prediction_type of ['epsilon', 'sample'] as const) {
            const x = fullLoop({ algorithm_type, solver_type, solver_order, prediction_type });
            expect(x.every(Number.isFinite)).toBe(true);
          }
  });

  it('as many steps as training timesteps keeps every step (test_duplicated_timesteps)', () => {
    const s = createDpmMultistep(base);
    s.setTimesteps(1000);
    expect(s.timesteps.length).toBe(1000);
  });

  it('rejects unsupported configurations', () => {
    expect(() => createDpmMultistep({ algorithm_type: 'dpmsolver' })).toThrow(/algorithm_type/);
    expect(() => createDpmMultistep({ solver_order: 4 })).toThrow(/solver_order/);
    const sde = createDpmMultistep({ ...base, algorithm_type: 'sde-dpmsolver++' });
    sde.setTimesteps(10);
    expect(() => sde.step(new Float32Array(4), sde.timesteps[0], new Float32Array(4))).toThrow(/generator/);
  });
});

describe('DPM-Solver++ with the cosine schedule', () => {
  it('runs every step when Karras timesteps repeat at the start (998, 998, … truncated)', () => {
    const s = createDpmMultistep({ beta_schedule: 'squaredcos_cap_v2', use_karras_sigmas: true });
    s.setTimesteps(25);
    expect(s.timesteps[0]).toBe(s.timesteps[1]);
    let x = dummySampleDeter();
    for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x).prevSample;
    expect(x.every(Number.isFinite)).toBe(true);
  });
});

// Port of diffusers tests/schedulers/test_scheduler_unipc.py (UniPCMultistepSchedulerTest): fixtures, reference
// means/sums and tolerances are diffusers'.
import { describe, expect, it } from 'vitest';
import { createUniPc } from './unipc.ts';
import type { SchedulerConfig } from './types.ts';
import { dummyModel, dummyNoiseDeter, dummySampleDeter, meanAbs, sumAbs } from './testing.ts';

const base: SchedulerConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear', solver_order: 2,
  solver_type: 'bh2', final_sigmas_type: 'sigma_min',
};

function fullLoop(extra: SchedulerConfig = {}, shape?: number[]) {
  const s = createUniPc({ ...base, ...extra });
  s.setTimesteps(10);
  let x = dummySampleDeter(shape);
  for (const t of s.timesteps) x = s.step(dummyModel(x, t), t, x).prevSample;
  return x;
}

describe('UniPC (diffusers test_scheduler_unipc)', () => {
  it('full loop', () => expect(Math.abs(meanAbs(fullLoop()) - 0.2464)).toBeLessThan(1e-3));
  it('full loop Karras', () => expect(Math.abs(meanAbs(fullLoop({ use_karras_sigmas: true })) - 0.2925)).toBeLessThan(1e-3));
  it('full loop v_prediction', () => expect(Math.abs(meanAbs(fullLoop({ prediction_type: 'v_prediction' })) - 0.1014)).toBeLessThan(1e-3));
  it('full loop Karras + v_prediction', () => {
    expect(Math.abs(meanAbs(fullLoop({ prediction_type: 'v_prediction', use_karras_sigmas: true })) - 0.1966)).toBeLessThan(1e-3);
  });
  it('full loop with noise (img2img from step 8)', () => {
    const s = createUniPc(base);
    s.setTimesteps(10);
    const ts = s.timesteps.slice(8);
    let x = s.addNoise(dummySampleDeter(), dummyNoiseDeter(), ts[0]);
    for (const t of ts) x = s.step(dummyModel(x, t), t, x).prevSample;
    expect(Math.abs(sumAbs(x) - 315.5757)).toBeLessThan(1e-2);
    expect(Math.abs(meanAbs(x) - 0.4109)).toBeLessThan(1e-3);
  });
  it('orders 1-3, bh1/bh2, predict_x0 on and off run without NaN (test_solver_order_and_type)', () => {
    for (const solver_type of ['bh1', 'bh2'] as const)
      for (const solver_order of [1, 2, 3])
        for (const prediction_type of ['epsilon', 'sample'] as const)
          for (const predict_x0 of [true, false]) {
            const x = fullLoop({ solver_type, solver_order, prediction_type, predict_x0 });
            expect(x.every(Number.isFinite)).toBe(true);
          }
  });
});

describe('UniPC on 1-D samples (diffusers UniPCMultistepScheduler1DTest, shape [4, 3, 8])', () => {
  const shape = [4, 3, 8];
  it('full loop', () => expect(Math.abs(meanAbs(fullLoop({}, shape)) - 0.2441)).toBeLessThan(1e-3));
  it('full loop Karras', () => expect(Math.abs(meanAbs(fullLoop({ use_karras_sigmas: true }, shape)) - 0.2898)).toBeLessThan(1e-3));
  it('full loop v_prediction', () => expect(Math.abs(meanAbs(fullLoop({ prediction_type: 'v_prediction' }, shape)) - 0.1014)).toBeLessThan(1e-3));
  it('full loop Karras + v_prediction', () => {
    expect(Math.abs(meanAbs(fullLoop({ prediction_type: 'v_prediction', use_karras_sigmas: true }, shape)) - 0.1944)).toBeLessThan(1e-3);
  });
  it('full loop with noise', () => {
    const s = createUniPc(base);
    s.setTimesteps(10);
    const ts = s.timesteps.slice(8);
    let x = s.addNoise(dummySampleDeter(shape), dummyNoiseDeter(shape), ts[0]);
    for (const t of ts) x = s.step(dummyModel(x, t), t, x).prevSample;
    expect(Math.abs(sumAbs(x) - 39.087)).toBeLessThan(1e-2);
    expect(Math.abs(meanAbs(x) - 0.4072)).toBeLessThan(1e-3);
  });
});

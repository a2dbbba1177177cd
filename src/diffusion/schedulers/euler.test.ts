// Ports of diffusers tests/schedulers/test_scheduler_euler.py, test_scheduler_euler_ancestral.py and
// test_scheduler_heun.py: diffusers' fixtures, reference sums/means and tolerances. The ancestral loops draw their
// noise from torch.manual_seed(0), reproduced by our torch-compatible generator.
import { describe, expect, it } from 'vitest';
import { createGenerator } from '../noise/index.ts';
import { createEuler, createEulerAncestral, createHeun } from './euler.ts';
import type { Scheduler, SchedulerConfig } from './types.ts';
import { dummyModel, dummyNoiseDeter, dummySampleDeter, meanAbs, scale, sumAbs } from './testing.ts';

const base: SchedulerConfig = { num_train_timesteps: 1100, beta_start: 0.0001, beta_end: 0.02, beta_schedule: 'linear' };

function fullLoop(s: Scheduler, tStart = 0): Float32Array {
  s.setTimesteps(10);
  const generator = createGenerator(0);
  let x = scale(dummySampleDeter(), s.initNoiseSigma);
  const ts = s.timesteps.slice(tStart * s.order);
  if (tStart > 0) x = s.addNoise(x, dummyNoiseDeter(), ts[0]);
  for (const t of ts) {
    x = s.scaleModelInput(x, t);
    x = s.step(dummyModel(x, t), t, x, { generator }).prevSample;
  }
  return x;
}

function expectClose(x: Float32Array, sum: number, mean: number, sumTol = 1e-2, meanTol = 1e-3) {
  expect(Math.abs(sumAbs(x) - sum)).toBeLessThan(sumTol);
  expect(Math.abs(meanAbs(x) - mean)).toBeLessThan(meanTol);
}

describe('Euler (diffusers test_scheduler_euler)', () => {
  it('full loop', () => expectClose(fullLoop(createEuler(base)), 10.0807, 0.0131));
  it('full loop v_prediction', () => expectClose(fullLoop(createEuler({ ...base, prediction_type: 'v_prediction' })), 0.0002, 2.2676e-6));
  it('full loop Karras sigmas', () => expectClose(fullLoop(createEuler({ ...base, use_karras_sigmas: true })), 124.52299499511719, 0.16213932633399963));
  it('full loop with noise', () => expectClose(fullLoop(createEuler(base), 8), 57062.9297, 74.3007));
});

describe('Euler ancestral (diffusers test_scheduler_euler_ancestral)', () => {
  it('full loop', () => expectClose(fullLoop(createEulerAncestral(base)), 152.3192, 0.1983));
  it('full loop v_prediction', () => expectClose(fullLoop(createEulerAncestral({ ...base, prediction_type: 'v_prediction' })), 108.4439, 0.1412));
  it('full loop with noise', () => expectClose(fullLoop(createEulerAncestral(base), 8), 56163.0508, 73.129));
  it('needs a generator', () => {
    const s = createEulerAncestral(base);
    s.setTimesteps(10);
    expect(() => s.step(new Float32Array(4), s.timesteps[0], new Float32Array(4))).toThrow(/generator/);
  });
});

describe('Heun (diffusers test_scheduler_heun)', () => {
  it('timesteps repeat for the corrector', () => {
    const s = createHeun(base);
    s.setTimesteps(3);
    expect(s.timesteps.length).toBe(5);
    expect(s.timesteps[1]).toBe(s.timesteps[2]);
    expect(s.order).toBe(2);
  });
  it('full loop', () => expectClose(fullLoop(createHeun(base)), 0.1233, 0.0002));
  it('full loop v_prediction', () => expectClose(fullLoop(createHeun({ ...base, prediction_type: 'v_prediction' })), 4.6934e-7, 6.1112e-10));
  it('full loop Karras sigmas', () => expectClose(fullLoop(createHeun({ ...base, use_karras_sigmas: true })), 0.00015, 1.9869554535034695e-7, 1e-2, 1e-2));
  it('full loop with noise', () => expectClose(fullLoop(createHeun(base), 8), 75074.8906, 97.7538));
});

// The linear plans of DESIGN decision 6 against the schedulers' own step(): a full sampling loop with diffusers' dummy
// model and a seeded noise stream, once through step() and once through the plan's coefficients (float64).
// Tolerance: 2e-5 relative to the sample's magnitude (the plan's coefficients are float32 values read off float32
// steps, so the two differ by a few ulps per step).
import { describe, expect, it } from 'vitest';
import { createGenerator } from '../noise/index.ts';
import { createScheduler, type SchedulerName } from './index.ts';
import { applyLinearStep, linearPlan } from './linear-step.ts';
import { dummyModel, dummySampleDeter } from './testing.ts';

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', clip_sample: false, set_alpha_to_one: false, steps_offset: 1 } as const;

function compare(name: SchedulerName, config: Record<string, unknown>, steps: number, tolerance = 2e-5) {
  const make = () => createScheduler(name, config);
  const plan = linearPlan(make, steps);
  if (!plan) throw new Error(`${name}: no linear plan`);
  const scheduler = make();
  scheduler.setTimesteps(steps);
  expect(plan.timesteps).toEqual(scheduler.timesteps);
  const [reference, planned] = [createGenerator(3), createGenerator(3)];
  const x0 = dummySampleDeter([1, 3, 8, 8]).map((v) => v * plan.initNoiseSigma);
  let x: Float32Array = x0;
  const xs: Float32Array[] = [x0];
  const outputs: Float32Array[] = [];
  let worst = 0;
  let worstPreview = 0;
  plan.steps.forEach((step, k) => {
    const t = plan.timesteps[k];
    const m = dummyModel(scheduler.scaleModelInput(x, t), t);
    const result = scheduler.step(m, t, x, { generator: reference });
    if (step.preview) {
      // The preview coefficients give the scheduler's own x̂₀ from this step's x and model output.
      const x0 = result.predOriginalSample!;
      const scale = Math.max(1, ...x0.map(Math.abs));
      worstPreview = Math.max(worstPreview, ...x0.map((v, i) => Math.abs(v - (step.preview!.sample * x[i] + step.preview!.output * m[i])) / scale));
    }
    x = result.prevSample;
    // The plan: the same model output computed from its own x, the same noise draws.
    const input = xs[k].map((v) => v * step.inputScale);
    outputs.push(dummyModel(input, t));
    let z: Float32Array | undefined;
    for (let d = 0; d < step.noiseDraws; d++) z = planned.randn(x.length);
    xs.push(applyLinearStep(step, xs, outputs, k, z));
    const scale = Math.max(1, ...x.map(Math.abs));
    worst = Math.max(worst, ...x.map((v, i) => Math.abs(v - xs[k + 1][i]) / scale));
  });
  expect(worst).toBeLessThan(tolerance);
  expect(worstPreview).toBeLessThan(tolerance);
  return plan;
}

describe('linear scheduler plans (DESIGN decision 6)', () => {
  it("carries each step's x̂₀ (preview) where the scheduler reports one of the form a·x_k + b·ε_k", () => {
    const withPreview = (name: SchedulerName) => compare(name, SD, 6).steps.every((s) => s.preview);
    expect((['ddim', 'euler', 'euler-ancestral', 'dpm++2m'] as const).map(withPreview)).toEqual([true, true, true, true]);
    expect(compare('pndm', { ...SD, skip_prk_steps: true }, 10).steps.some((s) => s.preview)).toBe(false); // PNDM reports no x̂₀
  });
  it('DDIM (eta 0): one sample and one output coefficient per step, no noise', () => {
    const plan = compare('ddim', SD, 10);
    expect(plan.history).toBe(0);
    expect(plan.steps.every((s) => s.noiseCoef === 0 && s.noiseDraws === 0 && s.inputScale === 1)).toBe(true);
  });
  it('DDIM with v-prediction and trailing spacing (the embedded model family)', () => {
    compare('ddim', { ...SD, prediction_type: 'v_prediction', timestep_spacing: 'trailing', beta_schedule: 'squaredcos_cap_v2' }, 7);
  });
  it('Euler: c_in = 1/√(σ²+1) per step', () => {
    const plan = compare('euler', SD, 12);
    expect(plan.steps[0].inputScale).toBeCloseTo(1 / Math.sqrt(plan.initNoiseSigma ** 2 + 1), 5);
  });
  it('Euler ancestral: noise drawn every step (also the last, with coefficient 0), like the scheduler', () => {
    const plan = compare('euler-ancestral', SD, 8);
    expect(plan.steps.every((s) => s.noiseDraws === 1)).toBe(true);
    expect(plan.steps.at(-1)!.noiseCoef).toBe(0);
  });
  it('DPM-Solver++ 2M reaches one step back', () => {
    expect(compare('dpm++2m', SD, 15).history).toBe(1);
    compare('dpm++2m-karras', SD, 10);
  });
  it('also fits Heun, PNDM (PLMS) and the SDE variant', () => {
    compare('heun', SD, 6);
    compare('pndm', { ...SD, skip_prk_steps: true }, 10);
    compare('dpm++2m-sde', SD, 8);
  });
  it('refuses what it cannot express: clip_sample, thresholding, UniPC (its corrector feeds back on itself)', () => {
    expect(linearPlan(() => createScheduler('unipc', SD), 10)).toBeUndefined();
    expect(linearPlan(() => createScheduler('ddim', { ...SD, clip_sample: true }), 10)).toBeUndefined();
    expect(linearPlan(() => createScheduler('dpm++2m', { ...SD, thresholding: true }), 10)).toBeUndefined();
  });
  it('Euler ancestral on a cosine schedule with trailing spacing (σ_max ≈ 2·10⁴): finite, σ_down² clamped at 0', () => {
    const cosine = { beta_schedule: 'squaredcos_cap_v2', timestep_spacing: 'trailing' } as const;
    // Its first step starts at x ~ 2·10⁴ and subtracts nearly equal f32 terms: the plan's coefficients, read off
    // that step, reproduce it to ~1e-4 of the sample's scale rather than 2e-5.
    const plan = compare('euler-ancestral', cosine, 3, 2e-4);
    expect(plan.steps.every((s) => [...s.sampleCoefs, ...s.outputCoefs, s.noiseCoef].every(Number.isFinite))).toBe(true);
  });
});

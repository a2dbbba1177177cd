// Registry tests, plus an analytic cross-check of every scheduler: for Gaussian data x₀ ~ N(0, s²) the optimal
// ε-predictor is known in closed form, and the probability-flow ODE maps the initial noise z linearly to
// z·s/√(ᾱ_T s² + 1 − ᾱ_T). ODE schedulers must reproduce that factor; stochastic ones must end with standard
// deviation s. This checks the maths independently of diffusers' reference numbers.
import { describe, expect, it } from 'vitest';
import { createGenerator } from '../noise/index.ts';
import { createScheduler, SCHEDULER_NAMES, schedulerNameForConfig, STOCHASTIC, type SchedulerName } from './index.ts';
import { alphasCumprod, interpIndex, makeBetas, sigmasFromAlphas } from './schedule.ts';

// Stable Diffusion 1.5's scheduler/scheduler_config.json, verbatim.
const SD15 = {
  _class_name: 'PNDMScheduler', _diffusers_version: '0.6.0', beta_end: 0.012, beta_schedule: 'scaled_linear',
  beta_start: 0.00085, num_train_timesteps: 1000, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1,
  trained_betas: null, clip_sample: false,
} as const;

// Enough steps for the discretisation error to fall below the 2% tolerance (first-order methods converge slowly
// on this problem: with 50 steps Euler and DDIM are still 5% off, and the error shrinks with more steps).
const STEPS: Record<SchedulerName, number> = {
  ddim: 500, pndm: 100, euler: 500, 'euler-ancestral': 500, heun: 50, 'dpm++2m': 250, 'dpm++2m-karras': 50,
  'dpm++2m-sde': 250, 'dpm++2m-sde-karras': 100, lcm: 4, unipc: 250,
};

/** Optimal ε̂(x_t, t) for x₀ ~ N(0, s²): √(1−ᾱ)·x_t/(ᾱs² + 1 − ᾱ); fractional t interpolates σ like diffusers. */
function gaussianEps(s: number) {
  const ac = alphasCumprod(makeBetas({ ...SD15 }));
  const sig = sigmasFromAlphas(ac);
  return (x: Float32Array, t: number) => {
    const sigma = interpIndex(t, sig);
    const a = 1 / (1 + sigma * sigma);
    const k = Math.sqrt(1 - a) / (a * s * s + 1 - a);
    return x.map((v) => v * k);
  };
}

function sampleGaussian(name: SchedulerName, s: number, n: number, eta = 0) {
  const sch = createScheduler(name, SD15);
  sch.setTimesteps(STEPS[name]);
  const eps = gaussianEps(s);
  const generator = createGenerator(1234);
  const z = generator.randn(n);
  let x: Float32Array = z.map((v) => v * sch.initNoiseSigma);
  for (const t of sch.timesteps) x = sch.step(eps(sch.scaleModelInput(x, t), t), t, x, { generator, eta }).prevSample;
  return { z, x };
}

describe('createScheduler', () => {
  it('knows every advertised name and rejects others', () => {
    for (const name of SCHEDULER_NAMES) expect(createScheduler(name, SD15).name).toBe(name);
    expect(() => createScheduler('dpm++3m', SD15)).toThrow(/unknown scheduler "dpm\+\+3m"/);
  });

  it('fills diffusers defaults and keeps the config keys given', () => {
    const s = createScheduler('dpm++2m', { num_train_timesteps: 1000 });
    expect(s.config.solver_order).toBe(2);
    expect(s.config.lower_order_final).toBe(true);
    expect(s.config.final_sigmas_type).toBe('zero');
    expect(createScheduler('euler', SD15).config.beta_schedule).toBe('scaled_linear');
    expect(createScheduler('dpm++2m-sde', SD15).config.algorithm_type).toBe('sde-dpmsolver++');
  });

  it('maps a config _class_name to our scheduler', () => {
    expect(schedulerNameForConfig(SD15)).toBe('pndm');
    expect(schedulerNameForConfig({ _class_name: 'DPMSolverMultistepScheduler', use_karras_sigmas: true })).toBe('dpm++2m-karras');
    expect(schedulerNameForConfig({ _class_name: 'DPMSolverMultistepScheduler', algorithm_type: 'sde-dpmsolver++' })).toBe('dpm++2m-sde');
    expect(schedulerNameForConfig({ _class_name: 'KDPM2DiscreteScheduler' })).toBeUndefined();
  });

  it('uses SD 1.5 timesteps like diffusers (leading spacing, steps_offset 1)', () => {
    const ddim = createScheduler('ddim', SD15);
    ddim.setTimesteps(5);
    expect(ddim.timesteps).toEqual([801, 601, 401, 201, 1]);
    const dpm = createScheduler('dpm++2m', SD15);
    dpm.setTimesteps(5);
    expect(dpm.timesteps).toEqual([999, 799, 599, 400, 200]); // linspace(0, 999, 6).round()[::-1][:-1]
  });
});

describe('every scheduler samples Gaussian data correctly (analytic optimal denoiser)', () => {
  const s = 0.5;
  const n = 4096;
  it('ddim with eta = 1 (stochastic, DDPM-like)', () => {
    const { x } = sampleGaussian('ddim', s, n, 1);
    const std = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / n);
    expect(Math.abs(std / s - 1)).toBeLessThan(0.03);
  });
  const ac = alphasCumprod(makeBetas({ ...SD15 }));
  for (const name of SCHEDULER_NAMES.filter((x) => x !== 'lcm')) {
    it(name, () => {
      const { z, x } = sampleGaussian(name, s, n);
      if (STOCHASTIC.has(name)) {
        const std = Math.sqrt(x.reduce((a, v) => a + v * v, 0) / n);
        expect(Math.abs(std / s - 1)).toBeLessThan(0.03); // 1.1% is the sampling error of 4096 draws
      } else {
        // ODE: x = k·z exactly for a linear denoiser; k depends on the schedule's first ᾱ (initial latents are z·σ_max
        // for σ-space schedulers, i.e. the same VP point).
        const sch = createScheduler(name, SD15);
        sch.setTimesteps(STEPS[name]);
        const tMax = Math.round(sch.timesteps[0]);
        const aT = ac[tMax];
        const kExact = s / Math.sqrt(aT * s * s + 1 - aT) * (sch.initNoiseSigma > 1 ? Math.sqrt(aT) * sch.initNoiseSigma : 1);
        const k = x.reduce((acc, v, i) => acc + v * z[i], 0) / z.reduce((acc, v) => acc + v * v, 0);
        expect(Math.abs(k / kExact - 1)).toBeLessThan(0.02);
      }
    });
  }
});

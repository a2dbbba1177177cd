// DDIM (Song et al. 2021, eq. 12) as diffusers' DDIMScheduler: x_{t−1} = √ᾱ_{t−1}·x̂₀ + √(1−ᾱ_{t−1}−σ²)·ε̂ + σ·z,
// σ = η·√((1−ᾱ_{t−1})/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_{t−1})). Per-element arithmetic follows torch's float32 operation order.

import { alphasCumprod, checkSameLength, checkSteps, clampArray, f32, makeBetas, spacedTimesteps, thresholdSample, withDefaults } from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepOptions, StepResult } from './types.ts';

export const DDIM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear' as string,
  trained_betas: null as number[] | null,
  clip_sample: true,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon' as string,
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading' as string,
  rescale_betas_zero_snr: false,
};

/**
 * x̂₀ and ε̂ from the model output for ᾱ_t (diffusers DDIM/LCM/PNDM conventions), float32 per element.
 * Shared with LCM.
 */
export function predictX0Eps(
  prediction: string, m: Float32Array, x: Float32Array, alphaProd: number,
): { x0: Float32Array; eps: Float32Array } {
  const sa = f32(Math.sqrt(alphaProd));
  const sb = f32(Math.sqrt(f32(1 - alphaProd)));
  const x0 = new Float32Array(x.length);
  const eps = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (prediction === 'epsilon') {
      x0[i] = f32(f32(x[i] - f32(sb * m[i])) / sa);
      eps[i] = m[i];
    } else if (prediction === 'sample') {
      x0[i] = m[i];
      eps[i] = f32(f32(x[i] - f32(sa * m[i])) / sb);
    } else if (prediction === 'v_prediction') {
      x0[i] = f32(f32(sa * x[i]) - f32(sb * m[i]));
      eps[i] = f32(f32(sa * m[i]) + f32(sb * x[i]));
    } else throw new Error(`prediction_type "${prediction}" must be epsilon, sample or v_prediction`);
  }
  return { x0, eps };
}

export function createDdim(config: SchedulerConfig = {}): Scheduler & { variance(t: number, prev: number): number } {
  const c = withDefaults('ddim', DDIM_DEFAULTS, config);
  const T = c.num_train_timesteps;
  const ac = alphasCumprod(makeBetas(c as never));
  const finalAc = c.set_alpha_to_one ? 1 : ac[0];
  let numSteps = 0;
  const alphaAt = (t: number) => (t >= 0 ? ac[t] : finalAc);

  function variance(t: number, prev: number): number {
    const at = alphaAt(t);
    const ap = alphaAt(prev);
    return f32(f32(f32(1 - ap) / f32(1 - at)) * f32(1 - f32(at / ap)));
  }

  function step(m: Float32Array, t: number, x: Float32Array, o: StepOptions = {}): StepResult {
    if (!numSteps) throw new Error('ddim: call setTimesteps before step');
    checkSameLength(m, x, 'ddim.step');
    const prev = t - Math.floor(T / numSteps);
    const ap = alphaAt(prev);
    let { x0, eps } = predictX0Eps(c.prediction_type, m, x, alphaAt(t));
    if (c.thresholding) x0 = thresholdSample(x0, o.batchSize ?? 1, c.dynamic_thresholding_ratio, c.sample_max_value);
    else if (c.clip_sample) x0 = clampArray(x0, c.clip_sample_range);
    const eta = o.eta ?? 0;
    const std = f32(eta * f32(Math.sqrt(variance(t, prev))));
    const dirCoef = f32(Math.sqrt(f32(f32(1 - ap) - f32(std * std))));
    const x0Coef = f32(Math.sqrt(ap));
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f32(f32(x0Coef * x0[i]) + f32(dirCoef * eps[i]));
    if (eta > 0) {
      if (!o.generator) throw new Error('ddim: eta > 0 needs a noise generator');
      const z = o.generator.randn(x.length);
      for (let i = 0; i < x.length; i++) out[i] = f32(out[i] + f32(std * z[i]));
    }
    return { prevSample: out, predOriginalSample: x0 };
  }

  return {
    name: 'ddim',
    config: c,
    order: 1,
    timesteps: [],
    initNoiseSigma: 1,
    setTimesteps(n: number) {
      checkSteps('ddim', n, T);
      numSteps = n;
      this.timesteps = spacedTimesteps(c.timestep_spacing, T, n, c.steps_offset);
    },
    scaleModelInput: (x) => x,
    step,
    variance,
    addNoise: (x, z, t) => addNoiseVp(ac, x, z, t),
  };
}

/** Variance-preserving forward process: √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (diffusers add_noise of DDIM/DDPM/PNDM/LCM). */
export function addNoiseVp(ac: number[], x: Float32Array, z: Float32Array, t: number): Float32Array {
  checkSameLength(x, z, 'addNoise');
  if (!Number.isInteger(t) || t < 0 || t >= ac.length) throw new Error(`addNoise: timestep ${t} is outside [0, ${ac.length})`);
  const a = f32(Math.sqrt(ac[t]));
  const b = f32(Math.sqrt(f32(1 - ac[t])));
  return x.map((v, i) => f32(f32(a * v) + f32(b * z[i])));
}

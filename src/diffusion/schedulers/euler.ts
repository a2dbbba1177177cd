// Euler, Euler ancestral and Heun in σ space (Karras et al. 2022, Algorithms 1–2; k-diffusion's sample_euler,
// sample_euler_ancestral, sample_heun), as diffusers' EulerDiscrete-, EulerAncestralDiscrete- and HeunDiscreteScheduler.
// The probability-flow ODE dx/dσ = (x − x̂₀)/σ is stepped from σ_i to σ_{i+1}; the ancestral variant steps to
// σ_down and adds σ_up·z; Heun averages the slopes at both ends (two model calls per step, timesteps repeated).

import { checkSameLength, checkSteps, f32, indexForTimestep, withDefaults } from './schedule.ts';
import { addNoiseSigma, denoisedAt, initNoiseSigma, scaleBySigma, sigmaSchedule, trainingSigmas } from './sigmas.ts';
import type { Scheduler, SchedulerConfig, StepOptions, StepResult } from './types.ts';

const K_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear' as string,
  trained_betas: null as number[] | null,
  prediction_type: 'epsilon' as string,
  timestep_spacing: 'linspace' as string,
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

export const EULER_DEFAULTS = {
  ...K_DEFAULTS,
  interpolation_type: 'linear' as string,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  final_sigmas_type: 'zero' as string,
};

export const EULER_ANCESTRAL_DEFAULTS = { ...K_DEFAULTS };

export const HEUN_DEFAULTS = {
  ...K_DEFAULTS,
  beta_start: 0.00085,
  beta_end: 0.012,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  clip_sample: false,
  clip_sample_range: 1.0,
};

type Kind = 'euler' | 'euler-ancestral' | 'heun';

/** One σ-space scheduler; `kind` picks the update. Step state follows diffusers (step index found from the first t). */
function createSigmaScheduler(kind: Kind, defaults: Record<string, unknown>, config: SchedulerConfig): Scheduler {
  const c = withDefaults(kind, defaults, config) as typeof HEUN_DEFAULTS & typeof EULER_DEFAULTS;
  if (kind !== 'euler') {
    // Keys only EulerDiscrete reads, possibly present in a config written for it.
    c.final_sigmas_type = 'zero';
    c.interpolation_type = 'linear';
  }
  if (kind === 'euler-ancestral') c.use_karras_sigmas = c.use_exponential_sigmas = false;
  if (config.timestep_type === 'continuous') throw new Error(`${kind}: timestep_type "continuous" is not supported`);
  const table = trainingSigmas(c);
  let sigmas: number[] = [];
  let index: number | null = null;
  let pending: { derivative: Float32Array; dt: number; sample: Float32Array } | null = null;

  const self: Scheduler = {
    name: kind,
    config: c,
    order: kind === 'heun' ? 2 : 1,
    timesteps: [],
    initNoiseSigma: 1,
    setTimesteps(n: number) {
      checkSteps(kind, n, c.num_train_timesteps);
      const s = sigmaSchedule(c, table, n);
      if (kind === 'heun') {
        // σ_0, σ_1, σ_1, …, σ_{n−1}, σ_{n−1}, 0 and t_0, t_1, t_1, …: the second call of each pair is the corrector.
        sigmas = [s.sigmas[0], ...s.sigmas.slice(1, -1).flatMap((v) => [v, v]), 0];
        this.timesteps = [s.timesteps[0], ...s.timesteps.slice(1).flatMap((v) => [v, v])];
      } else {
        sigmas = s.sigmas;
        this.timesteps = s.timesteps;
      }
      this.initNoiseSigma = initNoiseSigma(sigmas, c.timestep_spacing);
      index = null;
      pending = null;
    },
    scaleModelInput(x: Float32Array, t: number) {
      return scaleBySigma(x, sigmas[currentIndex(t)]);
    },
    step(m: Float32Array, t: number, x: Float32Array, o: StepOptions = {}): StepResult {
      checkSameLength(m, x, `${kind}.step`);
      const i = currentIndex(t);
      const out = kind === 'euler' ? eulerStep(m, x, i) : kind === 'euler-ancestral' ? ancestralStep(m, x, i, o) : heunStep(m, x, i);
      index = i + 1;
      return out;
    },
    addNoise(x: Float32Array, z: Float32Array, t: number) {
      if (!sigmas.length) throw new Error(`${kind}: call setTimesteps before addNoise`);
      return addNoiseSigma(x, z, sigmas[indexForTimestep(self.timesteps, t)]);
    },
  };

  function currentIndex(t: number): number {
    if (!sigmas.length) throw new Error(`${kind}: call setTimesteps first`);
    if (index === null) index = indexForTimestep(self.timesteps, t);
    if (index >= self.timesteps.length) throw new Error(`${kind}: all ${self.timesteps.length} steps are done; call setTimesteps again`);
    return index;
  }

  function eulerStep(m: Float32Array, x: Float32Array, i: number): StepResult {
    const sigma = sigmas[i];
    const x0 = denoisedAt(c.prediction_type, m, x, sigma);
    const dt = f32(sigmas[i + 1] - sigma);
    const prev = x.map((v, k) => f32(v + f32(f32(f32(v - x0[k]) / sigma) * dt)));
    return { prevSample: prev, predOriginalSample: x0 };
  }

  function ancestralStep(m: Float32Array, x: Float32Array, i: number, o: StepOptions): StepResult {
    if (!o.generator) throw new Error('euler-ancestral: step needs a noise generator (options.generator)');
    const from = sigmas[i];
    const to = sigmas[i + 1];
    const to2 = f32(to * to);
    const from2 = f32(from * from);
    const up = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)));
    // σ_down² = σ_to² − σ_up² ≥ 0 exactly, but in f32 it can round below 0 when σ_from is huge (a cosine schedule's
    // first σ ≈ 2·10⁴), where diffusers' step gives NaN: clamp at 0.
    const down = f32(Math.sqrt(Math.max(0, f32(to2 - f32(up * up)))));
    const x0 = denoisedAt(c.prediction_type, m, x, from);
    const dt = f32(down - from);
    const z = o.generator.randn(x.length); // drawn on every step, also the last (σ_up = 0), as diffusers does
    const prev = x.map((v, k) => f32(f32(v + f32(f32(f32(v - x0[k]) / from) * dt)) + f32(z[k] * up)));
    return { prevSample: prev, predOriginalSample: x0 };
  }

  function heunStep(m: Float32Array, x: Float32Array, i: number): StepResult {
    const first = pending === null;
    const sigma = first ? sigmas[i] : sigmas[i - 1];
    const next = first ? sigmas[i + 1] : sigmas[i];
    let x0 = denoisedAt(c.prediction_type, m, x, first ? sigma : next);
    if (c.clip_sample) x0 = x0.map((v) => Math.min(Math.max(v, -c.clip_sample_range), c.clip_sample_range));
    if (pending === null) {
      const derivative = x.map((v, k) => f32(f32(v - x0[k]) / sigma));
      const dt = f32(next - sigma);
      pending = { derivative, dt, sample: x };
      return { prevSample: x.map((v, k) => f32(v + f32(derivative[k] * dt))), predOriginalSample: x0 };
    }
    const { derivative: d1, dt, sample } = pending;
    pending = null;
    const prev = sample.map((v, k) => f32(v + f32(f32(f32(d1[k] + f32(f32(x[k] - x0[k]) / next)) / 2) * dt)));
    return { prevSample: prev, predOriginalSample: x0 };
  }

  return self;
}

export const createEuler = (config: SchedulerConfig = {}) => createSigmaScheduler('euler', EULER_DEFAULTS, config);
export const createEulerAncestral = (config: SchedulerConfig = {}) => createSigmaScheduler('euler-ancestral', EULER_ANCESTRAL_DEFAULTS, config);
export const createHeun = (config: SchedulerConfig = {}) => createSigmaScheduler('heun', HEUN_DEFAULTS, config);

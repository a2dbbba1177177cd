// Latent Consistency Model sampling (Luo et al. 2023, Algorithm 1) as diffusers' LCMScheduler: at each step the
// consistency function f(x, t) = c_skip·x + c_out·x̂₀ (boundary-condition scalings with σ_data = 0.5 and
// timestep_scaling) gives the clean estimate, which is re-noised to the next timestep with fresh noise.

import { alphasCumprod, checkSameLength, clampArray, f32, indexForTimestep, makeBetas, thresholdSample, withDefaults } from './schedule.ts';
import { addNoiseVp, predictX0Eps } from './ddim.ts';
import type { Scheduler, SchedulerConfig, StepOptions, StepResult } from './types.ts';

export const LCM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear' as string,
  trained_betas: null as number[] | null,
  original_inference_steps: 50,
  clip_sample: false,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon' as string,
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  timestep_spacing: 'leading' as string,
  timestep_scaling: 10.0,
  rescale_betas_zero_snr: false,
};

export function createLcm(config: SchedulerConfig = {}): Scheduler {
  const c = withDefaults('lcm', LCM_DEFAULTS, config);
  const T = c.num_train_timesteps;
  // (t·scaling)² must stay a finite float32 (diffusers ships 10); beyond ~1e15 c_skip and c_out become NaN.
  if (!(c.timestep_scaling > 0 && c.timestep_scaling <= 1e6)) throw new Error(`lcm: timestep_scaling must be in (0, 1e6], got ${c.timestep_scaling}`);
  const ac = alphasCumprod(makeBetas(c as never));
  const finalAc = c.set_alpha_to_one ? 1 : ac[0];
  let index: number | null = null;

  /** c_skip, c_out of the consistency parameterisation (Song et al. 2023, eq. 3) at the scaled timestep. */
  function scalings(t: number): [number, number] {
    const st = f32(t * c.timestep_scaling);
    const sd2 = 0.25;
    const cSkip = f32(sd2 / f32(f32(st * st) + sd2));
    const cOut = f32(st / f32(Math.sqrt(f32(f32(st * st) + sd2))));
    return [cSkip, cOut];
  }

  const self: Scheduler = {
    name: 'lcm',
    config: c,
    order: 1,
    timesteps: [],
    initNoiseSigma: 1,
    setTimesteps(n: number) {
      const orig = c.original_inference_steps;
      if (orig > T) throw new Error(`lcm: original_inference_steps ${orig} exceeds num_train_timesteps ${T}`);
      if (!Number.isInteger(n) || n < 1 || n > orig) throw new Error(`lcm: numInferenceSteps must be an integer in [1, ${orig}], got ${n}`);
      // The distillation grid: every k-th training step ending at k·orig − 1, subsampled evenly from the top.
      const k = Math.floor(T / orig);
      const grid = Array.from({ length: orig }, (_, i) => (i + 1) * k - 1).reverse();
      this.timesteps = Array.from({ length: n }, (_, i) => grid[Math.floor(i * (grid.length / n))]);
      index = null;
    },
    scaleModelInput: (x) => x,
    step(m: Float32Array, t: number, x: Float32Array, o: StepOptions = {}): StepResult {
      const ts = self.timesteps;
      if (!ts.length) throw new Error('lcm: call setTimesteps before step');
      checkSameLength(m, x, 'lcm.step');
      if (index === null) index = indexForTimestep(ts, t);
      const i = index;
      if (i >= ts.length) throw new Error('lcm: all steps are done; call setTimesteps again');
      const tPrev = i + 1 < ts.length ? ts[i + 1] : t;
      const ap = tPrev >= 0 ? ac[tPrev] : finalAc;
      let { x0 } = predictX0Eps(c.prediction_type, m, x, ac[t]);
      if (c.thresholding) x0 = thresholdSample(x0, o.batchSize ?? 1, c.dynamic_thresholding_ratio, c.sample_max_value);
      else if (c.clip_sample) x0 = clampArray(x0, c.clip_sample_range);
      const [cSkip, cOut] = scalings(t);
      const denoised = x0.map((v, k) => f32(f32(cOut * v) + f32(cSkip * x[k])));
      let prev = denoised;
      if (i !== ts.length - 1) {
        if (!o.generator) throw new Error('lcm: multi-step sampling needs a noise generator (options.generator)');
        const z = o.generator.randn(x.length);
        const a = f32(Math.sqrt(ap));
        const b = f32(Math.sqrt(f32(1 - ap)));
        prev = denoised.map((v, k) => f32(f32(a * v) + f32(b * z[k])));
      }
      index = i + 1;
      return { prevSample: prev, predOriginalSample: denoised };
    },
    addNoise: (x, z, t) => addNoiseVp(ac, x, z, t),
  };
  return self;
}

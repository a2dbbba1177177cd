// σ schedules of the k-diffusion family (diffusers EulerDiscrete / EulerAncestralDiscrete / HeunDiscrete
// `set_timesteps`): float timesteps, σ interpolated at them (or Karras / exponential σ mapped back to fractional
// timesteps by `_sigma_to_t`), and the shared σ-space helpers (input scaling, x̂₀ from the model output).

import {
  alphasCumprod, exponentialSigmas, f32, interpIndex, karrasSigmas, makeBetas, sigmaToT, sigmasFromAlphas,
  spacedTimestepsFloat,
} from './schedule.ts';

export interface SigmaConfig {
  num_train_timesteps: number;
  timestep_spacing: string;
  steps_offset: number;
  use_karras_sigmas?: boolean;
  use_exponential_sigmas?: boolean;
  sigma_min?: number | null;
  sigma_max?: number | null;
  final_sigmas_type?: string;
  interpolation_type?: string;
}

export interface SigmaSchedule {
  /** σ per inference step plus the final σ, float32. */
  sigmas: number[];
  /** Float32 timesteps (fractional with Karras/exponential σ). */
  timesteps: number[];
}

/** Training-time ᾱ and σ tables of a σ-based scheduler (zero-terminal-SNR floors ᾱ_T at 2⁻²⁴ as diffusers does). */
export function trainingSigmas(c: Record<string, unknown>): { ac: number[]; sigmas: number[]; logSigmas: number[] } {
  const ac = alphasCumprod(makeBetas(c as never), Boolean(c.rescale_betas_zero_snr));
  const sigmas = sigmasFromAlphas(ac);
  return { ac, sigmas, logSigmas: sigmas.map((s) => f32(Math.log(s))) };
}

export function sigmaSchedule(c: SigmaConfig, table: { ac: number[]; sigmas: number[]; logSigmas: number[] }, n: number): SigmaSchedule {
  if (c.use_karras_sigmas && c.use_exponential_sigmas) throw new Error('use_karras_sigmas and use_exponential_sigmas are exclusive');
  if ((c.interpolation_type ?? 'linear') !== 'linear') throw new Error(`interpolation_type "${c.interpolation_type}" is not supported (linear)`);
  let timesteps = spacedTimestepsFloat(c.timestep_spacing, c.num_train_timesteps, n, c.steps_offset);
  let sigmas = timesteps.map((t) => interpIndex(t, table.sigmas));
  if (c.use_karras_sigmas || c.use_exponential_sigmas) {
    const lo = c.sigma_min ?? sigmas[sigmas.length - 1];
    const hi = c.sigma_max ?? sigmas[0];
    sigmas = c.use_karras_sigmas ? karrasSigmas(lo, hi, n) : exponentialSigmas(lo, hi, n);
    timesteps = sigmas.map((s) => f32(sigmaToT(s, table.logSigmas)));
  }
  let last = 0;
  if (c.final_sigmas_type === 'sigma_min') last = f32(Math.sqrt(f32(f32(1 - table.ac[0]) / table.ac[0])));
  else if (c.final_sigmas_type !== undefined && c.final_sigmas_type !== 'zero') {
    throw new Error(`final_sigmas_type "${c.final_sigmas_type}" must be zero or sigma_min`);
  }
  return { sigmas: [...sigmas, last].map(f32), timesteps };
}

/** init_noise_sigma: σ_max for linspace/trailing spacing, √(σ_max²+1) for leading (float32). */
export function initNoiseSigma(sigmas: number[], spacing: string): number {
  const max = Math.max(...sigmas);
  return spacing === 'leading' ? f32(Math.sqrt(f32(f32(max * max) + 1))) : max;
}

/** x / √(σ²+1): the k-diffusion input scaling (c_in). */
export function scaleBySigma(x: Float32Array, sigma: number): Float32Array {
  const d = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
  return x.map((v) => f32(v / d));
}

/** x̂₀ from the model output at noise level σ (diffusers Euler/Heun `pred_original_sample`). */
export function denoisedAt(prediction: string, m: Float32Array, x: Float32Array, sigma: number): Float32Array {
  if (prediction === 'epsilon') return x.map((v, i) => f32(v - f32(sigma * m[i])));
  if (prediction === 'sample') return m.slice();
  if (prediction === 'v_prediction') {
    const s2 = f32(f32(sigma * sigma) + 1);
    const cOut = f32(-sigma / f32(Math.sqrt(s2)));
    return x.map((v, i) => f32(f32(m[i] * cOut) + f32(v / s2)));
  }
  throw new Error(`prediction_type "${prediction}" must be epsilon, sample or v_prediction`);
}

/** add_noise of the σ-based schedulers: x₀ + σ·ε. */
export function addNoiseSigma(x: Float32Array, z: Float32Array, sigma: number): Float32Array {
  if (x.length !== z.length) throw new Error(`addNoise: lengths differ (${x.length} vs ${z.length})`);
  return x.map((v, i) => f32(v + f32(z[i] * sigma)));
}

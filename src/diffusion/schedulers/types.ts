// Scheduler API shared by every scheduler: diffusers' method names in camelCase, diffusers' config keys verbatim.
// Samples are flat Float32Arrays (NCHW order, batch first); scalars follow diffusers' float32 arithmetic.

import type { NoiseGenerator } from '../noise/index.ts';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/**
 * The keys of a model's `scheduler_config.json`, exactly as diffusers writes them. Keys a scheduler does not use are
 * ignored (diffusers does the same when it loads a config written for another scheduler); `_class_name` and
 * `_diffusers_version` may be present.
 */
export interface SchedulerConfig {
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: BetaSchedule;
  trained_betas?: number[] | null;
  prediction_type?: PredictionType;
  timestep_spacing?: TimestepSpacing;
  steps_offset?: number;
  set_alpha_to_one?: boolean;
  clip_sample?: boolean;
  clip_sample_range?: number;
  thresholding?: boolean;
  dynamic_thresholding_ratio?: number;
  sample_max_value?: number;
  rescale_betas_zero_snr?: boolean;
  skip_prk_steps?: boolean;
  interpolation_type?: 'linear' | 'log_linear';
  use_karras_sigmas?: boolean;
  use_exponential_sigmas?: boolean;
  use_lu_lambdas?: boolean;
  sigma_min?: number | null;
  sigma_max?: number | null;
  solver_order?: number;
  algorithm_type?: 'dpmsolver++' | 'sde-dpmsolver++' | 'dpmsolver' | 'sde-dpmsolver';
  solver_type?: 'midpoint' | 'heun' | 'bh1' | 'bh2';
  lower_order_final?: boolean;
  euler_at_final?: boolean;
  final_sigmas_type?: 'zero' | 'sigma_min';
  lambda_min_clipped?: number;
  original_inference_steps?: number;
  timestep_scaling?: number;
  predict_x0?: boolean;
  disable_corrector?: number[];
  [other: string]: unknown;
}

export interface StepOptions {
  /** DDIM's η (0 = deterministic DDIM, 1 = DDPM-like variance). Ignored by other schedulers. */
  eta?: number;
  /** Source of the step noise (ancestral, SDE and LCM steps, DDIM with η > 0). Required only by those. */
  generator?: NoiseGenerator;
  /** Batch size of `sample` (for per-image dynamic thresholding); defaults to 1. */
  batchSize?: number;
}

export interface StepResult {
  prevSample: Float32Array;
  predOriginalSample?: Float32Array;
}

export interface Scheduler {
  readonly name: string;
  /** The configuration with diffusers' defaults filled in for keys that were left out. */
  readonly config: Readonly<Record<string, unknown>>;
  /** Model evaluations per timestep entry pattern (2 for Heun, whose timesteps repeat). */
  readonly order: number;
  /** Timesteps the model is evaluated at, in order (after `setTimesteps`). */
  timesteps: number[];
  /** Standard deviation of the initial noise: multiply unit Gaussian latents by it. */
  initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  /** Scales the sample before it goes into the model (k-diffusion schedulers divide by √(σ²+1)). */
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  step(modelOutput: Float32Array, t: number, sample: Float32Array, options?: StepOptions): StepResult;
  /** Forward-diffuses `original` to timestep `t` (img2img, tests). */
  addNoise(original: Float32Array, noise: Float32Array, t: number): Float32Array;
}

// DPM-Solver++ multistep (Lu et al. 2022, "DPM-Solver++", Algorithm 2; the SDE variant of §5 / k-diffusion's
// sample_dpmpp_2m_sde) as diffusers' DPMSolverMultistepScheduler with algorithm_type "dpmsolver++" or "sde-dpmsolver++",
// orders 1–3, midpoint/heun second-order forms, Karras / exponential / Lu-λ σ spacings. Works on the data prediction
// x̂₀; λ = log(α/σ) is the half log-SNR and h = λ_t − λ_s the step in it.

import {
  alphasCumprod, arange, checkSameLength, checkSteps, exponentialSigmas, f32, interpIndex, karrasSigmas, linspace,
  makeBetas, roundHalfEven, sigmaToT, sigmasFromAlphas, thresholdSample, withDefaults,
} from './schedule.ts';
import type { Scheduler, SchedulerConfig, StepOptions, StepResult } from './types.ts';

export const DPM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear' as string,
  trained_betas: null as number[] | null,
  solver_order: 2,
  prediction_type: 'epsilon' as string,
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++' as string,
  solver_type: 'midpoint' as string,
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  use_lu_lambdas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  final_sigmas_type: 'zero' as string,
  lambda_min_clipped: -Infinity,
  variance_type: null as string | null,
  timestep_spacing: 'linspace' as string,
  steps_offset: 0,
  rescale_betas_zero_snr: false,
};

type DpmConfig = typeof DPM_DEFAULTS;

/** α_t = 1/√(σ²+1), σ_t = σ·α_t: the VP coefficients of a VE σ (float32). */
export function alphaSigma(sigma: number): [number, number] {
  const a = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return [a, f32(sigma * a)];
}

export const lambdaOf = (a: number, s: number) => f32(f32(Math.log(a)) - f32(Math.log(s)));

function validate(c: DpmConfig): void {
  if (c.algorithm_type === 'deis') c.algorithm_type = 'dpmsolver++';
  if (['bh1', 'bh2', 'logrho'].includes(c.solver_type)) c.solver_type = 'midpoint'; // configs written for UniPC/DEIS
  if (!['dpmsolver++', 'sde-dpmsolver++'].includes(c.algorithm_type)) {
    throw new Error(`dpm: algorithm_type "${c.algorithm_type}" is not supported (dpmsolver++, sde-dpmsolver++)`);
  }
  if (!['midpoint', 'heun'].includes(c.solver_type)) throw new Error(`dpm: solver_type "${c.solver_type}" must be midpoint or heun`);
  if (![1, 2, 3].includes(c.solver_order)) throw new Error(`dpm: solver_order must be 1, 2 or 3, got ${c.solver_order}`);
  if (c.variance_type === 'learned' || c.variance_type === 'learned_range') {
    throw new Error('dpm: learned variance outputs (6-channel UNets) are not supported');
  }
  if ([c.use_karras_sigmas, c.use_exponential_sigmas, c.use_lu_lambdas].filter(Boolean).length > 1) {
    throw new Error('dpm: use only one of use_karras_sigmas, use_exponential_sigmas, use_lu_lambdas');
  }
}

export function createDpmMultistep(config: SchedulerConfig = {}, name = 'dpm++2m'): Scheduler {
  const c = withDefaults(name, DPM_DEFAULTS, config);
  validate(c);
  const T = c.num_train_timesteps;
  const ac = alphasCumprod(makeBetas(c as never), c.rescale_betas_zero_snr);
  const trainSigmas = sigmasFromAlphas(ac);
  const logSigmas = trainSigmas.map((s) => f32(Math.log(s)));
  let sigmas: number[] = [];
  let index: number | null = null;
  let outputs: Float32Array[] = [];
  let lowerOrderNums = 0;

  function schedule(n: number): { timesteps: number[]; sigmas: number[] } {
    // λ_min clipping (for cosine schedules): drop training steps whose λ is below lambda_min_clipped.
    const lambdas = ac.map((a) => lambdaOf(f32(Math.sqrt(a)), f32(Math.sqrt(f32(1 - a))))).reverse();
    const clipped = lambdas.filter((l) => l < c.lambda_min_clipped).length;
    const last = T - clipped;
    if (last < n) throw new Error(`dpm: lambda_min_clipped ${c.lambda_min_clipped} leaves ${last} of ${T} training timesteps, fewer than the ${n} steps asked for`);
    let ts: number[];
    if (c.timestep_spacing === 'linspace') ts = linspace(0, last - 1, n + 1).map(roundHalfEven).reverse().slice(0, -1);
    else if (c.timestep_spacing === 'leading') {
      const ratio = Math.floor(last / (n + 1));
      ts = Array.from({ length: n + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map((t) => t + c.steps_offset);
    } else if (c.timestep_spacing === 'trailing') ts = arange(last, 0, -T / n).map((t) => roundHalfEven(t) - 1);
    else throw new Error(`dpm: timestep_spacing "${c.timestep_spacing}" is not supported (leading, trailing, linspace)`);
    let s: number[];
    const roundT = (t: number) => (c.beta_schedule === 'squaredcos_cap_v2' ? t : roundHalfEven(t));
    if (c.use_karras_sigmas || c.use_exponential_sigmas) {
      const lo = c.sigma_min ?? trainSigmas[0];
      const hi = c.sigma_max ?? trainSigmas[T - 1];
      s = c.use_karras_sigmas ? karrasSigmas(lo, hi, n) : exponentialSigmas(lo, hi, n);
      ts = s.map((v) => sigmaToT(v, logSigmas));
      if (c.use_karras_sigmas) ts = ts.map(roundT);
    } else if (c.use_lu_lambdas) {
      // Lu et al.'s uniform-λ spacing; diffusers applies it to log σ.
      const [lo, hi] = [logSigmas[0], logSigmas[T - 1]];
      s = linspace(0, 1, n).map((r) => Math.exp(hi + r * (lo - hi)));
      ts = s.map((v) => roundT(sigmaToT(v, logSigmas)));
    } else s = ts.map((t) => interpIndex(t, trainSigmas));
    let final = 0;
    if (c.final_sigmas_type === 'sigma_min') final = trainSigmas[0];
    else if (c.final_sigmas_type !== 'zero') throw new Error(`dpm: final_sigmas_type "${c.final_sigmas_type}" must be zero or sigma_min`);
    // diffusers stores int64 timesteps (truncating fractional ones).
    return { timesteps: ts.map(Math.trunc), sigmas: [...s, final].map(f32) };
  }

  /** convert_model_output: the data prediction x̂₀ (thresholded if configured). */
  function toX0(m: Float32Array, x: Float32Array, i: number, batch: number): Float32Array {
    const [a, s] = alphaSigma(sigmas[i]);
    let x0: Float32Array;
    if (c.prediction_type === 'epsilon') x0 = x.map((v, k) => f32(f32(v - f32(s * m[k])) / a));
    else if (c.prediction_type === 'sample') x0 = m.slice();
    else if (c.prediction_type === 'v_prediction') x0 = x.map((v, k) => f32(f32(a * v) - f32(s * m[k])));
    else throw new Error(`dpm: prediction_type "${c.prediction_type}" must be epsilon, sample or v_prediction`);
    return c.thresholding ? thresholdSample(x0, batch, c.dynamic_thresholding_ratio, c.sample_max_value) : x0;
  }

  /** One multistep update of the given order from sample x at step i; z is the SDE noise (or null for the ODE). */
  function update(order: number, x: Float32Array, i: number, z: Float32Array | null): Float32Array {
    const sde = z !== null;
    const [at, st] = alphaSigma(sigmas[i + 1]);
    const [a0, s0] = alphaSigma(sigmas[i]);
    const h = f32(lambdaOf(at, st) - lambdaOf(a0, s0));
    const eh = f32(Math.exp(f32(-h)));
    const e2h = f32(Math.exp(f32(-2 * h)));
    // x_t = cx·x + c0·D0 + c1·D1 + c2·D2 + cz·z with D0 = m0 and D1, D2 divided differences in λ.
    const cx = sde ? f32(f32(st / s0) * eh) : f32(st / s0);
    const phi1 = sde ? f32(at * f32(1 - e2h)) : f32(-f32(at * f32(eh - 1)));
    const cz = sde ? f32(st * f32(Math.sqrt(f32(1 - e2h)))) : 0;
    const m0 = outputs[outputs.length - 1];
    const out = new Float32Array(x.length);
    if (order === 1) {
      for (let k = 0; k < x.length; k++) out[k] = f32(f32(cx * x[k]) + f32(phi1 * m0[k]));
    } else if (order === 2) {
      const [a1, s1] = alphaSigma(sigmas[i - 1]);
      const h0 = f32(lambdaOf(a0, s0) - lambdaOf(a1, s1));
      const invR0 = f32(1 / f32(h0 / h));
      const m1 = outputs[outputs.length - 2];
      let c1: number;
      if (c.solver_type === 'midpoint') c1 = f32(0.5 * phi1);
      else c1 = sde ? f32(at * f32(f32(f32(1 - e2h) / f32(-2 * h)) + 1)) : f32(at * f32(f32(f32(eh - 1) / h) + 1));
      for (let k = 0; k < x.length; k++) {
        const d1 = f32(invR0 * f32(m0[k] - m1[k]));
        out[k] = f32(f32(f32(cx * x[k]) + f32(phi1 * m0[k])) + f32(c1 * d1));
      }
    } else {
      const [a1, s1] = alphaSigma(sigmas[i - 1]);
      const [a2, s2] = alphaSigma(sigmas[i - 2]);
      const l0 = lambdaOf(a0, s0);
      const l1 = lambdaOf(a1, s1);
      const r0 = f32(f32(l0 - l1) / h);
      const r1 = f32(f32(l1 - lambdaOf(a2, s2)) / h);
      const m1 = outputs[outputs.length - 2];
      const m2 = outputs[outputs.length - 3];
      const c1 = sde ? f32(at * f32(f32(f32(1 - e2h) / f32(-2 * h)) + 1)) : f32(at * f32(f32(f32(eh - 1) / h) + 1));
      const c2 = sde
        ? f32(at * f32(f32(f32(f32(1 - e2h) - f32(2 * h)) / f32(f32(2 * h) * f32(2 * h))) - 0.5))
        : f32(-f32(at * f32(f32(f32(f32(eh - 1) + h) / f32(h * h)) - 0.5)));
      const w = f32(r0 / f32(r0 + r1));
      const inv = f32(1 / f32(r0 + r1));
      for (let k = 0; k < x.length; k++) {
        const d10 = f32(f32(1 / r0) * f32(m0[k] - m1[k]));
        const d11 = f32(f32(1 / r1) * f32(m1[k] - m2[k]));
        const d1 = f32(d10 + f32(w * f32(d10 - d11)));
        const d2 = f32(inv * f32(d10 - d11));
        out[k] = f32(f32(f32(f32(cx * x[k]) + f32(phi1 * m0[k])) + f32(c1 * d1)) + f32(c2 * d2));
      }
    }
    if (z) for (let k = 0; k < x.length; k++) out[k] = f32(out[k] + f32(cz * z[k]));
    return out;
  }

  const self: Scheduler = {
    name,
    config: c,
    order: 1,
    timesteps: [],
    initNoiseSigma: 1,
    setTimesteps(n: number) {
      checkSteps(name, n, T);
      const s = schedule(n);
      this.timesteps = s.timesteps;
      sigmas = s.sigmas;
      index = null;
      outputs = [];
      lowerOrderNums = 0;
    },
    scaleModelInput: (x) => x,
    step(m: Float32Array, t: number, x: Float32Array, o: StepOptions = {}): StepResult {
      if (!sigmas.length) throw new Error(`${name}: call setTimesteps before step`);
      checkSameLength(m, x, `${name}.step`);
      if (index === null) index = dpmIndex(self.timesteps, t);
      const i = index;
      const n = self.timesteps.length;
      if (i >= n) throw new Error(`${name}: all ${n} steps are done; call setTimesteps again`);
      const lowerFinal = i === n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === 'zero');
      const lowerSecond = i === n - 2 && c.lower_order_final && n < 15;
      const x0 = toX0(m, x, i, o.batchSize ?? 1);
      outputs = [...outputs, x0].slice(-c.solver_order);
      let z: Float32Array | null = null;
      if (c.algorithm_type === 'sde-dpmsolver++') {
        if (!o.generator) throw new Error(`${name}: the SDE solver needs a noise generator (options.generator)`);
        z = o.generator.randn(x.length);
      }
      let order: number;
      // Repeated timesteps (more steps than the spacing can separate) make a divided difference 0/0 in diffusers;
      // we drop to first order there instead of producing NaN.
      const repeated = i > 0 && (sigmas[i - 1] === sigmas[i] || sigmas[i] === sigmas[i + 1] || (i > 1 && sigmas[i - 2] === sigmas[i - 1]));
      if (c.solver_order === 1 || lowerOrderNums < 1 || lowerFinal || repeated) order = 1;
      else if (c.solver_order === 2 || lowerOrderNums < 2 || lowerSecond) order = 2;
      else order = 3;
      const prev = update(order, x, i, z);
      if (lowerOrderNums < c.solver_order) lowerOrderNums++;
      index = i + 1;
      return { prevSample: prev, predOriginalSample: x0 };
    },
    addNoise(x: Float32Array, z: Float32Array, t: number) {
      if (!sigmas.length) throw new Error(`${name}: call setTimesteps before addNoise`);
      checkSameLength(x, z, 'addNoise');
      const [a, s] = alphaSigma(sigmas[dpmIndex(self.timesteps, t)]);
      return x.map((v, k) => f32(f32(a * v) + f32(s * z[k])));
    },
  };
  return self;
}

/**
 * DPMSolverMultistep's index_for_timestep: unknown timesteps map to the last step, repeats to the second match
 * (except a start at timesteps[0], as in schedule.ts indexForTimestep).
 */
export function dpmIndex(timesteps: number[], t: number): number {
  if (timesteps[0] === t) return 0;
  const hits: number[] = [];
  timesteps.forEach((x, i) => x === t && hits.push(i));
  if (hits.length === 0) return timesteps.length - 1;
  return hits.length > 1 ? hits[1] : hits[0];
}

// Noise-schedule maths shared by the schedulers: betas, ᾱ (alphas_cumprod), timestep spacings and σ conversions.
// Each function mirrors a piece of diffusers (named in its comment) including where diffusers works in float32
// (torch tensors) or float64 (numpy), so that schedules agree with diffusers to the last float32 bit or close to it.

import type { SchedulerConfig } from './types.ts';

export const f32 = Math.fround;

/** torch.linspace(start, end, steps, dtype=float32): float32 arithmetic, symmetric from both ends (ATen linspace). */
export function linspaceF32(start: number, end: number, steps: number): number[] {
  if (steps === 1) return [f32(start)];
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    out.push(i < half ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - 1 - i))));
  }
  return out;
}

/** numpy.linspace in float64 (endpoint included). */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(i * step + start);
  out[num - 1] = stop;
  return out;
}

/** numpy.arange for a float step: start + i·step while short of stop. */
export function arange(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(start + i * step);
  return out;
}

/** numpy.round / torch.round: round half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** diffusers `betas_for_alpha_bar` with the cosine ᾱ of Nichol & Dhariwal (float64, then float32). */
function cosineBetas(n: number, maxBeta = 0.999): number[] {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const betas: number[] = [];
  for (let i = 0; i < n; i++) betas.push(f32(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta)));
  return betas;
}

/** torch.cumprod on float32: accumulates in double (ATen acc_type), stores float32. */
export function cumprodF32(xs: number[]): number[] {
  let acc = 1;
  return xs.map((x) => f32((acc *= x)));
}

/** diffusers `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1), in float32. */
function rescaleZeroTerminalSnr(betas: number[]): number[] {
  const sqrtBar = cumprodF32(betas.map((b) => f32(1 - b))).map((a) => f32(Math.sqrt(a)));
  const first = sqrtBar[0];
  const last = sqrtBar[sqrtBar.length - 1];
  const scale = f32(first / f32(first - last));
  const bar = sqrtBar.map((s) => f32(f32(s - last) * scale)).map((s) => f32(s * s));
  return bar.map((a, i) => f32(1 - (i === 0 ? a : f32(a / bar[i - 1]))));
}

export function makeBetas(c: Required<Pick<SchedulerConfig, 'num_train_timesteps' | 'beta_start' | 'beta_end' | 'beta_schedule'>> & SchedulerConfig): number[] {
  const n = c.num_train_timesteps;
  let betas: number[];
  if (c.trained_betas) betas = c.trained_betas.map(f32);
  else if (c.beta_schedule === 'linear') betas = linspaceF32(c.beta_start, c.beta_end, n);
  else if (c.beta_schedule === 'scaled_linear') {
    betas = linspaceF32(Math.sqrt(c.beta_start), Math.sqrt(c.beta_end), n).map((b) => f32(b * b));
  } else if (c.beta_schedule === 'squaredcos_cap_v2') betas = cosineBetas(n);
  else throw new Error(`beta_schedule "${show(c.beta_schedule)}" is not supported (linear, scaled_linear, squaredcos_cap_v2)`);
  if (betas.length !== n) throw new Error(`trained_betas has ${betas.length} entries, num_train_timesteps is ${n}`);
  // A hostile or mistyped schedule (beta_end 0.5) drives float32 ᾱ to 0 long before the end: σ = √((1−ᾱ)/ᾱ) is
  // then infinite and every image NaN. Zero terminal SNR sets the last ᾱ to 0 on purpose (and fixes it up later).
  const bar = cumprodF32(betas.map((b) => f32(1 - b)));
  const zeroAt = bar.findIndex((a) => !(a > 0));
  if (zeroAt >= 0 && !(c.rescale_betas_zero_snr && zeroAt === n - 1)) {
    throw new Error(`the beta schedule drives alphas_cumprod to 0 at timestep ${zeroAt} of ${n} (σ would be infinite); check beta_start / beta_end / trained_betas`);
  }
  return c.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** ᾱ_t = Π(1 − β); with zero-terminal-SNR the last one is set to 2⁻²⁴ as diffusers does for σ-based schedulers. */
export function alphasCumprod(betas: number[], zeroSnrFloor = false): number[] {
  const ac = cumprodF32(betas.map((b) => f32(1 - b)));
  if (zeroSnrFloor) ac[ac.length - 1] = 2 ** -24;
  return ac;
}

/** σ_t = √((1 − ᾱ)/ᾱ) in float32, indexed by training timestep (ascending). */
export function sigmasFromAlphas(ac: number[]): number[] {
  return ac.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** numpy.interp(x, arange(len(fp)), fp), clamped at both ends. */
export function interpIndex(x: number, fp: number[]): number {
  if (x <= 0) return fp[0];
  if (x >= fp.length - 1) return fp[fp.length - 1];
  const j = Math.floor(x);
  const slope = fp[j + 1] - fp[j];
  return slope * (x - j) + fp[j];
}

/** diffusers `_sigma_to_t`: fractional training timestep whose log σ matches, by linear interpolation in log σ. */
export function sigmaToT(sigma: number, logSigmas: number[]): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = -1;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i] >= 0) low = i;
  low = Math.min(Math.max(low, 0), logSigmas.length - 2);
  const w = Math.min(Math.max((logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[low + 1]), 0), 1);
  return (1 - w) * low + w * (low + 1);
}

/** Karras et al. 2022 eq. 5 with ρ = 7 (diffusers `_convert_to_karras`), from σ_max down to σ_min. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return linspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** diffusers `_convert_to_exponential`: σ evenly spaced in log σ. */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  return linspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/**
 * Integer timesteps for DDIM-like schedulers (descending), per `timestep_spacing` as in diffusers DDIMScheduler:
 * "leading" = multiples of ⌊T/n⌋ plus steps_offset, "trailing" = round(T − k·T/n) − 1, "linspace" = round(linspace(0, T−1, n)).
 */
export function spacedTimesteps(spacing: string, T: number, n: number, stepsOffset: number): number[] {
  if (spacing === 'linspace') return linspace(0, T - 1, n).map(roundHalfEven).reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(T / n);
    const ts = Array.from({ length: n }, (_, i) => i * ratio + stepsOffset).reverse();
    if (ts[0] >= T) throw new Error(`${n} steps with steps_offset ${stepsOffset} reach timestep ${ts[0]} ≥ num_train_timesteps ${T}`);
    return ts;
  }
  if (spacing === 'trailing') return arange(T, 0, -T / n).map((x) => roundHalfEven(x) - 1);
  throw new Error(`timestep_spacing "${spacing}" is not supported (leading, trailing, linspace)`);
}

/**
 * Float timesteps of the σ-based (k-diffusion style) schedulers, descending, as float32 (diffusers Euler/Heun):
 * linspace is not rounded there.
 */
export function spacedTimestepsFloat(spacing: string, T: number, n: number, stepsOffset: number): number[] {
  if (spacing === 'linspace') return linspace(0, T - 1, n).map(f32).reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(T / n);
    return Array.from({ length: n }, (_, i) => f32(i * ratio + stepsOffset)).reverse();
  }
  if (spacing === 'trailing') return arange(T, 0, -T / n).map((x) => f32(roundHalfEven(x) - 1));
  throw new Error(`timestep_spacing "${spacing}" is not supported (leading, trailing, linspace)`);
}

/**
 * diffusers' index_for_timestep: the second match when a timestep repeats (so img2img starts mid-pair), else the
 * first. One deliberate difference: a loop that starts at timesteps[0] starts at index 0 even when that value repeats
 * (fractional Karras timesteps of the cosine schedule truncate to 998, 998, …; diffusers would skip a step there).
 */
export function indexForTimestep(timesteps: number[], t: number): number {
  if (timesteps[0] === t) return 0;
  const hits: number[] = [];
  timesteps.forEach((x, i) => x === t && hits.push(i));
  if (hits.length === 0) throw new Error(`timestep ${t} is not in this scheduler's timesteps`);
  return hits.length > 1 ? hits[1] : hits[0];
}

/** A config value for a message (not String(): an object from the file may carry a non-function "toString"). */
const show = (v: unknown) => (typeof v === 'object' && v !== null ? String(JSON.stringify(v)).slice(0, 40) : String(v));

/** Merges user keys over defaults, rejecting values of the wrong type for known keys. */
export function withDefaults<D extends Record<string, unknown>>(name: string, defaults: D, config: SchedulerConfig): D {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined || k.startsWith('_')) continue;
    const d = defaults[k];
    if (k in defaults && d !== null && v !== null && (typeof d !== typeof v || Array.isArray(d) !== Array.isArray(v))) {
      throw new Error(`${name}: config key "${k}" should be ${Array.isArray(d) ? 'an array' : `a ${typeof d}`}, got ${JSON.stringify(v)?.slice(0, 80)}`);
    }
    // NaN never; ±Infinity only where diffusers writes it (DPMSolver's lambda_min_clipped = -inf).
    if (typeof v === 'number' && (Number.isNaN(v) || (!Number.isFinite(v) && k !== 'lambda_min_clipped'))) {
      throw new Error(`${name}: config key "${k}" must be a finite number, got ${v}`);
    }
    out[k] = v;
  }
  validateCommon(name, out);
  return out as D;
}

/** Range checks on the keys every scheduler reads, so a hostile or broken config fails here with a clear message. */
function validateCommon(name: string, c: Record<string, unknown>): void {
  const T = c.num_train_timesteps;
  if (typeof T !== 'number' || !Number.isInteger(T) || T < 2 || T > 100_000) {
    throw new Error(`${name}: num_train_timesteps must be an integer in [2, 100000], got ${show(T)}`);
  }
  for (const k of ['beta_start', 'beta_end'] as const) {
    const v = c[k];
    if (v !== undefined && (typeof v !== 'number' || !(v > 0 && v < 1))) throw new Error(`${name}: ${k} must be in (0, 1), got ${show(v)}`);
  }
  const tb = c.trained_betas;
  // β = 0 adds no noise at that step: σ = 0 there, and the k-diffusion schedulers divide by it.
  if (tb !== undefined && tb !== null && (!Array.isArray(tb) || !tb.every((b) => typeof b === 'number' && b > 0 && b < 1))) {
    throw new Error(`${name}: trained_betas must be an array of numbers in (0, 1)`);
  }
  const off = c.steps_offset;
  if (off !== undefined && (typeof off !== 'number' || !Number.isInteger(off) || off < 0 || off >= T)) {
    throw new Error(`${name}: steps_offset must be an integer in [0, num_train_timesteps), got ${show(off)}`);
  }
  for (const k of ['sigma_min', 'sigma_max'] as const) {
    const v = c[k];
    // σ² must stay a finite float32 and σ well above 0 (SD: 0.03 to 14.6; EDM-style models up to ~80–700).
    if (v !== undefined && v !== null && (typeof v !== 'number' || !(v >= 1e-5 && v <= 1e4))) throw new Error(`${name}: ${k} must be a number in [1e-5, 1e4], got ${JSON.stringify(v)?.slice(0, 40)}`);
  }
  if (typeof c.sigma_min === 'number' && typeof c.sigma_max === 'number' && !(c.sigma_min < c.sigma_max)) {
    throw new Error(`${name}: sigma_min ${c.sigma_min} must be below sigma_max ${c.sigma_max}`);
  }
}

export function checkSteps(name: string, n: number, T: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: numInferenceSteps must be a positive integer, got ${n}`);
  if (n > T) throw new Error(`${name}: numInferenceSteps ${n} is larger than num_train_timesteps ${T}`);
}

export function checkSameLength(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: lengths differ (${a.length} vs ${b.length})`);
}

/**
 * diffusers `_threshold_sample` (Imagen dynamic thresholding): per batch item, s = clamp(quantile(|x|, ratio), 1, max),
 * then x = clamp(x, −s, s)/s. torch.quantile uses linear interpolation between order statistics.
 */
export function thresholdSample(x: Float32Array, batchSize: number, ratio: number, maxValue: number): Float32Array {
  if (x.length % batchSize !== 0) throw new Error(`thresholding: ${x.length} values do not split into ${batchSize} images`);
  const per = x.length / batchSize;
  const out = new Float32Array(x.length);
  for (let b = 0; b < batchSize; b++) {
    const row = x.subarray(b * per, (b + 1) * per);
    const sorted = Float64Array.from(row, Math.abs).sort();
    const pos = ratio * (per - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, per - 1);
    const q = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    const s = f32(Math.min(Math.max(q, 1), maxValue));
    for (let i = 0; i < per; i++) out[b * per + i] = Math.min(Math.max(row[i], -s), s) / s;
  }
  return out;
}

export function clampArray(x: Float32Array, range: number): Float32Array {
  return x.map((v) => Math.min(Math.max(v, -range), range));
}

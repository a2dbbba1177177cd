// UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework", Algorithms 1–2 with B(h) = hφ₁ for
// "bh1" or e^h − 1 for "bh2") as diffusers' UniPCMultistepScheduler: a multistep predictor UniP, and a corrector UniC
// that reuses the model output at the new point, so the order rises by one at no extra model call.

import {
  alphasCumprod, arange, checkSameLength, checkSteps, exponentialSigmas, f32, interpIndex, karrasSigmas, linspace,
  makeBetas, roundHalfEven, sigmaToT, sigmasFromAlphas, thresholdSample, withDefaults,
} from './schedule.ts';
import { alphaSigma, dpmIndex, lambdaOf } from './dpm-multistep.ts';
import type { Scheduler, SchedulerConfig, StepOptions, StepResult } from './types.ts';

export const UNIPC_DEFAULTS = {
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
  predict_x0: true,
  solver_type: 'bh2' as string,
  lower_order_final: true,
  disable_corrector: [] as number[],
  use_karras_sigmas: false,
  use_exponential_sigmas: false,
  sigma_min: null as number | null,
  sigma_max: null as number | null,
  timestep_spacing: 'linspace' as string,
  steps_offset: 0,
  final_sigmas_type: 'zero' as string,
  rescale_betas_zero_snr: false,
};

/** Solves the small dense system A·x = b (Gaussian elimination with partial pivoting, float64). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let p = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(M[r][col]) > Math.abs(M[p][col])) p = r;
    [M[col], M[p]] = [M[p], M[col]];
    for (let r = col + 1; r < n; r++) {
      const f = M[r][col] / M[col][col];
      for (let k = col; k <= n; k++) M[r][k] -= f * M[col][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let k = r + 1; k < n; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

export function createUniPc(config: SchedulerConfig = {}): Scheduler {
  const c = withDefaults('unipc', UNIPC_DEFAULTS, config);
  if (['midpoint', 'heun', 'logrho'].includes(c.solver_type)) c.solver_type = 'bh2'; // configs written for DPM-Solver
  if (c.solver_type !== 'bh1' && c.solver_type !== 'bh2') throw new Error(`unipc: solver_type "${c.solver_type}" must be bh1 or bh2`);
  if (!Number.isInteger(c.solver_order) || c.solver_order < 1 || c.solver_order > 4) throw new Error(`unipc: solver_order must be 1–4, got ${c.solver_order}`);
  if (c.use_karras_sigmas && c.use_exponential_sigmas) throw new Error('unipc: use_karras_sigmas and use_exponential_sigmas are exclusive');
  const T = c.num_train_timesteps;
  const ac = alphasCumprod(makeBetas(c as never), c.rescale_betas_zero_snr);
  const trainSigmas = sigmasFromAlphas(ac);
  const logSigmas = trainSigmas.map((s) => f32(Math.log(s)));
  let sigmas: number[] = [];
  let index: number | null = null;
  let outputs: Float32Array[] = [];
  let lowerOrderNums = 0;
  let lastSample: Float32Array | null = null;
  let thisOrder = 1;

  function schedule(n: number): { timesteps: number[]; sigmas: number[] } {
    let ts: number[];
    if (c.timestep_spacing === 'linspace') ts = linspace(0, T - 1, n + 1).map(roundHalfEven).reverse().slice(0, -1);
    else if (c.timestep_spacing === 'leading') {
      const ratio = Math.floor(T / (n + 1));
      ts = Array.from({ length: n + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map((t) => t + c.steps_offset);
    } else if (c.timestep_spacing === 'trailing') ts = arange(T, 0, -T / n).map((t) => roundHalfEven(t) - 1);
    else throw new Error(`unipc: timestep_spacing "${c.timestep_spacing}" is not supported (leading, trailing, linspace)`);
    if (c.final_sigmas_type !== 'zero' && c.final_sigmas_type !== 'sigma_min') {
      throw new Error(`unipc: final_sigmas_type "${c.final_sigmas_type}" must be zero or sigma_min`);
    }
    let s: number[];
    let final: number;
    if (c.use_karras_sigmas || c.use_exponential_sigmas) {
      const lo = c.sigma_min ?? trainSigmas[0];
      const hi = c.sigma_max ?? trainSigmas[T - 1];
      s = c.use_karras_sigmas ? karrasSigmas(lo, hi, n) : exponentialSigmas(lo, hi, n);
      ts = s.map((v) => sigmaToT(v, logSigmas));
      if (c.use_karras_sigmas) ts = ts.map(roundHalfEven);
      final = c.final_sigmas_type === 'sigma_min' ? s[s.length - 1] : 0;
    } else {
      s = ts.map((t) => interpIndex(t, trainSigmas));
      final = c.final_sigmas_type === 'sigma_min' ? trainSigmas[0] : 0;
    }
    return { timesteps: ts.map(Math.trunc), sigmas: [...s, final].map(f32) };
  }

  /** convert_model_output: x̂₀ (predict_x0, the default) or ε̂. */
  function convert(m: Float32Array, x: Float32Array, i: number, batch: number): Float32Array {
    const [a, s] = alphaSigma(sigmas[i]);
    const p = c.prediction_type;
    if (!['epsilon', 'sample', 'v_prediction'].includes(p)) throw new Error(`unipc: prediction_type "${p}" must be epsilon, sample or v_prediction`);
    if (c.predict_x0) {
      let x0: Float32Array;
      if (p === 'epsilon') x0 = x.map((v, k) => f32(f32(v - f32(s * m[k])) / a));
      else if (p === 'sample') x0 = m.slice();
      else x0 = x.map((v, k) => f32(f32(a * v) - f32(s * m[k])));
      return c.thresholding ? thresholdSample(x0, batch, c.dynamic_thresholding_ratio, c.sample_max_value) : x0;
    }
    if (p === 'epsilon') return m;
    if (p === 'sample') return x.map((v, k) => f32(f32(v - f32(a * m[k])) / s));
    return m.map((v, k) => f32(f32(a * v) + f32(s * x[k])));
  }

  /** The shared coefficients of UniP/UniC: h, B(h), hφ₁, the ratios r_k and the right-hand side b. */
  function coefficients(tIdx: number, sIdx: number, prevIdx: (k: number) => number, order: number) {
    const [at, st] = alphaSigma(sigmas[tIdx]);
    const [a0, s0] = alphaSigma(sigmas[sIdx]);
    const l0 = lambdaOf(a0, s0);
    const h = f32(lambdaOf(at, st) - l0);
    const rks: number[] = [];
    for (let k = 1; k < order; k++) {
      const [ak, sk] = alphaSigma(sigmas[prevIdx(k)]);
      rks.push(f32(f32(lambdaOf(ak, sk) - l0) / h));
    }
    rks.push(1);
    const hh = c.predict_x0 ? -h : h;
    const hPhi1 = f32(Math.expm1(hh));
    const Bh = c.solver_type === 'bh1' ? hh : hPhi1;
    const R: number[][] = [];
    const b: number[] = [];
    let hPhiK = f32(f32(hPhi1 / hh) - 1);
    let fact = 1;
    for (let i = 1; i <= order; i++) {
      R.push(rks.map((r) => r ** (i - 1)));
      b.push(f32(f32(hPhiK * fact) / Bh));
      fact *= i + 1;
      hPhiK = f32(f32(hPhiK / hh) - f32(1 / fact));
    }
    return { at, st, a0, s0, hPhi1, Bh, rks, R, b };
  }

  /** x_t_ = σ_t/σ_s·x − α_t·hφ₁·m₀ (data prediction) or α_t/α_s·x − σ_t·hφ₁·m₀ (noise prediction), minus k·Σρ_j·D_j. */
  function combine(co: ReturnType<typeof coefficients>, x: Float32Array, m0: Float32Array, res: Float32Array | null): Float32Array {
    const cx = c.predict_x0 ? f32(co.st / co.s0) : f32(co.at / co.a0);
    const cm = c.predict_x0 ? f32(co.at * co.hPhi1) : f32(co.st * co.hPhi1);
    const cr = c.predict_x0 ? f32(co.at * co.Bh) : f32(co.st * co.Bh);
    return x.map((v, k) => {
      const base = f32(f32(cx * v) - f32(cm * m0[k]));
      return res ? f32(base - f32(cr * res[k])) : base;
    });
  }

  /** Σ ρ_j·(m_j − m₀)/r_j over the earlier outputs (einsum of diffusers). */
  function weightedDiffs(rhos: number[], rks: number[], m0: Float32Array, olds: Float32Array[]): Float32Array {
    return m0.map((v, k) => olds.reduce((acc, mj, j) => f32(acc + f32(f32(rhos[j]) * f32(f32(mj[k] - v) / rks[j]))), 0));
  }

  function predictor(x: Float32Array, i: number, order: number): Float32Array {
    const m0 = outputs[outputs.length - 1];
    const co = coefficients(i + 1, i, (k) => i - k, order);
    if (order === 1) return combine(co, x, m0, null);
    const rhos = order === 2 ? [0.5] : solve(co.R.slice(0, -1).map((r) => r.slice(0, -1)), co.b.slice(0, -1)).map(f32);
    const olds = Array.from({ length: order - 1 }, (_, k) => outputs[outputs.length - 2 - k]);
    return combine(co, x, m0, weightedDiffs(rhos, co.rks, m0, olds));
  }

  function corrector(modelT: Float32Array, last: Float32Array, i: number, order: number): Float32Array {
    const m0 = outputs[outputs.length - 1];
    const co = coefficients(i, i - 1, (k) => i - 1 - k, order);
    const rhos = order === 1 ? [0.5] : solve(co.R, co.b).map(f32);
    const olds = Array.from({ length: order - 1 }, (_, k) => outputs[outputs.length - 2 - k]);
    const corr = weightedDiffs(rhos.slice(0, -1), co.rks, m0, olds);
    const rLast = rhos[rhos.length - 1];
    const res = corr.map((v, k) => f32(v + f32(rLast * f32(modelT[k] - m0[k]))));
    return combine(co, last, m0, res);
  }

  const self: Scheduler = {
    name: 'unipc',
    config: c,
    order: 1,
    timesteps: [],
    initNoiseSigma: 1,
    setTimesteps(n: number) {
      checkSteps('unipc', n, T);
      const s = schedule(n);
      this.timesteps = s.timesteps;
      sigmas = s.sigmas;
      index = null;
      outputs = [];
      lowerOrderNums = 0;
      lastSample = null;
    },
    scaleModelInput: (x) => x,
    step(m: Float32Array, t: number, x0: Float32Array, o: StepOptions = {}): StepResult {
      if (!sigmas.length) throw new Error('unipc: call setTimesteps before step');
      checkSameLength(m, x0, 'unipc.step');
      if (index === null) index = dpmIndex(self.timesteps, t);
      const i = index;
      const n = self.timesteps.length;
      if (i >= n) throw new Error(`unipc: all ${n} steps are done; call setTimesteps again`);
      let x = x0;
      const converted = convert(m, x, i, o.batchSize ?? 1);
      if (i > 0 && !c.disable_corrector.includes(i - 1) && lastSample) x = corrector(converted, lastSample, i, thisOrder);
      outputs = [...outputs, converted].slice(-c.solver_order);
      const wanted = c.lower_order_final ? Math.min(c.solver_order, n - i) : c.solver_order;
      thisOrder = Math.min(wanted, lowerOrderNums + 1);
      lastSample = x;
      const prev = predictor(x, i, thisOrder);
      if (lowerOrderNums < c.solver_order) lowerOrderNums++;
      index = i + 1;
      return { prevSample: prev };
    },
    addNoise(x: Float32Array, z: Float32Array, t: number) {
      if (!sigmas.length) throw new Error('unipc: call setTimesteps before addNoise');
      checkSameLength(x, z, 'addNoise');
      const [a, s] = alphaSigma(sigmas[dpmIndex(self.timesteps, t)]);
      return x.map((v, k) => f32(f32(a * v) + f32(s * z[k])));
    },
  };
  return self;
}

// PNDM (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models") as diffusers' PNDMScheduler: three
// pseudo Runge–Kutta steps (4 model calls each) to start, then pseudo linear multistep (Adams–Bashforth on ε), all
// through the transfer φ of eq. 11 (`_get_prev_sample`). With skip_prk_steps (Stable Diffusion's config) PLMS starts
// with a second-order warm-up instead.

import { alphasCumprod, arange, checkSameLength, checkSteps, f32, linspace, makeBetas, roundHalfEven, withDefaults } from './schedule.ts';
import { addNoiseVp } from './ddim.ts';
import type { Scheduler, SchedulerConfig, StepResult } from './types.ts';

export const PNDM_DEFAULTS = {
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear' as string,
  trained_betas: null as number[] | null,
  skip_prk_steps: false,
  set_alpha_to_one: false,
  prediction_type: 'epsilon' as string,
  timestep_spacing: 'leading' as string,
  steps_offset: 0,
};

export function createPndm(config: SchedulerConfig = {}): Scheduler & { prkTimesteps: number[]; plmsTimesteps: number[] } {
  const c = withDefaults('pndm', PNDM_DEFAULTS, config);
  if (c.prediction_type !== 'epsilon' && c.prediction_type !== 'v_prediction') {
    throw new Error(`pndm: prediction_type "${c.prediction_type}" must be epsilon or v_prediction`);
  }
  const T = c.num_train_timesteps;
  const ac = alphasCumprod(makeBetas(c as never));
  const finalAc = c.set_alpha_to_one ? 1 : ac[0];
  let n = 0;
  let ets: Float32Array[] = [];
  let counter = 0;
  let curModelOutput: Float32Array | null = null;
  let curSample: Float32Array | null = null;

  /** φ(x_t, ε, t → t_prev): eq. 11 of the paper, with v-prediction converted to ε first. */
  function prevSample(x: Float32Array, t: number, tPrev: number, m: Float32Array): Float32Array {
    const at = ac[t];
    const ap = tPrev >= 0 ? ac[tPrev] : finalAc;
    const bt = f32(1 - at);
    const bp = f32(1 - ap);
    let eps = m;
    if (c.prediction_type === 'v_prediction') {
      const sa = f32(Math.sqrt(at));
      const sb = f32(Math.sqrt(bt));
      eps = m.map((v, k) => f32(f32(sa * v) + f32(sb * x[k])));
    }
    const sampleCoef = f32(Math.sqrt(f32(ap / at)));
    const denom = f32(f32(at * f32(Math.sqrt(bp))) + f32(Math.sqrt(f32(f32(at * bt) * ap))));
    const diff = f32(ap - at);
    return x.map((v, k) => f32(f32(sampleCoef * v) - f32(f32(diff * eps[k]) / denom)));
  }

  // Σ w_j·x_j, then divided by `div` (or multiplied by 1/24 for the fourth order, as diffusers writes it).
  const combine = (ws: number[], xs: Float32Array[], div: number) =>
    xs[0].map((_, k) => {
      const acc = ws.reduce((a, w, j) => f32(a + f32(w * xs[j][k])), 0);
      return div === 24 ? f32(f32(1 / 24) * acc) : f32(acc / div);
    });

  function stepPrk(m: Float32Array, t: number, x: Float32Array): StepResult {
    const half = Math.floor(Math.floor(T / n) / 2);
    const tPrev = t - (counter % 2 ? 0 : half);
    const tStart = self.prkTimesteps[Math.floor(counter / 4) * 4];
    let eps = m;
    const acc = curModelOutput ?? new Float32Array(m.length);
    // Runge–Kutta weights 1/6, 1/3, 1/3, 1/6 accumulated over the four calls of one PRK step.
    if (counter % 4 === 0) {
      curModelOutput = acc.map((v, k) => f32(v + f32(f32(1 / 6) * m[k])));
      ets.push(m);
      curSample = x;
    } else if (counter % 4 === 1 || counter % 4 === 2) {
      curModelOutput = acc.map((v, k) => f32(v + f32(f32(1 / 3) * m[k])));
    } else {
      eps = acc.map((v, k) => f32(v + f32(f32(1 / 6) * m[k])));
      curModelOutput = null;
    }
    const out = prevSample(curSample ?? x, tStart, tPrev, eps);
    counter++;
    return { prevSample: out };
  }

  function stepPlms(m: Float32Array, t0: number, x: Float32Array): StepResult {
    if (!c.skip_prk_steps && ets.length < 3) throw new Error('pndm: PLMS needs the three PRK steps first (run the timesteps in order)');
    let t = t0;
    let tPrev = t - Math.floor(T / n);
    if (counter !== 1) {
      ets = ets.slice(-3);
      ets.push(m);
    } else {
      tPrev = t;
      t = t + Math.floor(T / n);
    }
    let eps: Float32Array;
    let sample = x;
    if (ets.length === 1 && counter === 0) {
      eps = m;
      curSample = x;
    } else if (ets.length === 1 && counter === 1) {
      eps = m.map((v, k) => f32(f32(v + ets[0][k]) / 2));
      sample = curSample!;
      curSample = null;
    } else if (ets.length === 2) eps = combine([3, -1], [ets[1], ets[0]], 2);
    else if (ets.length === 3) eps = combine([23, -16, 5], [ets[2], ets[1], ets[0]], 12);
    else eps = combine([55, -59, 37, -9], [ets[3], ets[2], ets[1], ets[0]], 24);
    const out = prevSample(sample, t, tPrev, eps);
    counter++;
    return { prevSample: out };
  }

  const self = {
    name: 'pndm',
    config: c,
    order: 1,
    timesteps: [] as number[],
    prkTimesteps: [] as number[],
    plmsTimesteps: [] as number[],
    initNoiseSigma: 1,
    setTimesteps(steps: number) {
      checkSteps('pndm', steps, T);
      n = steps;
      let ts: number[]; // ascending
      if (c.timestep_spacing === 'linspace') ts = linspace(0, T - 1, n).map(roundHalfEven);
      else if (c.timestep_spacing === 'leading') ts = Array.from({ length: n }, (_, i) => i * Math.floor(T / n) + c.steps_offset);
      else if (c.timestep_spacing === 'trailing') ts = arange(T, 0, -T / n).map(roundHalfEven).reverse().map((t) => t - 1);
      else throw new Error(`pndm: timestep_spacing "${c.timestep_spacing}" is not supported (leading, trailing, linspace)`);
      if (c.skip_prk_steps) {
        this.prkTimesteps = [];
        this.plmsTimesteps = [...ts.slice(0, -1), ts[ts.length - 2], ts[ts.length - 1]].reverse();
      } else {
        const half = Math.floor(Math.floor(T / n) / 2);
        const prk = ts.slice(-4).flatMap((v) => [v, v + half]);
        this.prkTimesteps = prk.slice(0, -1).flatMap((v) => [v, v]).slice(1, -1).reverse();
        this.plmsTimesteps = ts.slice(0, -3).reverse();
      }
      this.timesteps = [...this.prkTimesteps, ...this.plmsTimesteps];
      ets = [];
      counter = 0;
      curModelOutput = null;
      curSample = null;
    },
    scaleModelInput: (x: Float32Array) => x,
    step(m: Float32Array, t: number, x: Float32Array): StepResult {
      if (!n) throw new Error('pndm: call setTimesteps before step');
      checkSameLength(m, x, 'pndm.step');
      if (counter >= this.timesteps.length) throw new Error('pndm: all steps are done; call setTimesteps again');
      return counter < this.prkTimesteps.length ? stepPrk(m, t, x) : stepPlms(m, t, x);
    },
    addNoise: (x: Float32Array, z: Float32Array, t: number) => addNoiseVp(ac, x, z, t),
  };
  return self;
}

// DESIGN decision 6: a scheduler step as a linear combination, so a GPU-resident loop applies every scheduler with
// one small kernel instead of each scheduler being written twice (TypeScript and WGSL). For step k:
//   model input   = inputScale_k · x_k
//   x_{k+1}       = Σ_j sampleCoefs_k[j] · x_{k−j} + Σ_j outputCoefs_k[j] · ε_{k−j} + noiseCoef_k · z_k
// with ε the (guided) model output passed to step(), z_k the noise the scheduler draws at step k (if any), j = 0 the
// current step. Multistep methods (DPM-Solver++ 2M, PNDM, UniPC) reach back through older x and ε; the history
// coefficients absorb their x̂₀ conversions (x̂₀_{k−1} = a·x_{k−1} + b·ε_{k−1}), so the kernel never needs them.
//
// How the coefficients are found: not by restating each scheduler's formulas (a second copy that could drift), but by
// reading them off the scheduler's own `step()`, which for these schedulers is affine in its inputs. Per step k, a fresh
// scheduler is driven to step k with unit impulses on separate elements (x at step k−j on one element, ε at step k−j
// on another, z on a third) and zeros elsewhere; the outputs at step k are the coefficients. The plan is then checked
// against the scheduler on random, large inputs: clip_sample, thresholding or anything else nonlinear fails the check
// and `linearPlan` returns undefined, so the caller falls back to the CPU loop. Each element must evolve on its own
// (true of every scheduler here except thresholding, which the check rejects).
import type { NoiseGenerator } from '../noise/index.ts';
import type { Scheduler } from './types.ts';

export interface LinearStep {
  timestep: number;
  inputScale: number;
  /** Coefficients of x_k, x_{k−1}, … (length = plan.history + 1). */
  sampleCoefs: number[];
  /** Coefficients of ε_k, ε_{k−1}, … (length = plan.history + 1). */
  outputCoefs: number[];
  noiseCoef: number;
  /** How many `randn(sampleSize)` draws the scheduler makes at this step (kept so noise streams stay in sync). */
  noiseDraws: number;
  /**
   * The scheduler's x̂₀ estimate at this step (its predOriginalSample) as x̂₀ = sample·x_k + output·ε_k, for previews;
   * absent where the scheduler gives none or it is not of that form.
   */
  preview?: { sample: number; output: number };
}

export interface LinearPlan {
  initNoiseSigma: number;
  timesteps: number[];
  /** Deepest history any step uses (0 for DDIM and Euler, 1 for DPM-Solver++ 2M). */
  history: number;
  steps: LinearStep[];
}

/** Deepest history probed (PNDM needs 4). UniPC keeps its corrected sample, an unbounded recursion: no plan, CPU loop. */
export const MAX_HISTORY = 4;
const ROLES = 2 * (MAX_HISTORY + 1); // element 2j: x_{k−j} = 1, element 2j+1: ε_{k−j} = 1
const NOISE = ROLES; // element with z_k = 1
const PROBE = ROLES + 1;

/**
 * The linear plan of `createScheduler()` for `steps` inference steps, or undefined when its step is not affine
 * (e.g. DDIM with clip_sample, dynamic thresholding). Costs O(steps²) steps on arrays of 9 elements.
 */
export function linearPlan(createScheduler: () => Scheduler, steps: number, tolerance = 1e-4): LinearPlan | undefined {
  const reference = createScheduler();
  reference.setTimesteps(steps);
  const timesteps = [...reference.timesteps];
  const plan: LinearPlan = { initNoiseSigma: reference.initNoiseSigma, timesteps, history: 0, steps: [] };
  for (let k = 0; k < timesteps.length; k++) plan.steps.push(probeStep(createScheduler, steps, timesteps, k));
  plan.history = Math.max(0, ...plan.steps.map((s) => lastNonZero(s.sampleCoefs, s.outputCoefs)));
  for (const s of plan.steps) {
    s.sampleCoefs = s.sampleCoefs.slice(0, plan.history + 1);
    s.outputCoefs = s.outputCoefs.slice(0, plan.history + 1);
  }
  const finite = plan.steps.every((s) => [s.inputScale, s.noiseCoef, ...s.sampleCoefs, ...s.outputCoefs].every(Number.isFinite));
  const check = finite ? agreesWithScheduler(plan, createScheduler, steps, tolerance) : { step: false, preview: false };
  if (!check.preview) plan.steps.forEach((s) => delete s.preview); // previews then show x_{k+1} instead
  return check.step ? plan : undefined;
}

function probeStep(createScheduler: () => Scheduler, steps: number, timesteps: number[], k: number): LinearStep {
  const scheduler = createScheduler();
  scheduler.setTimesteps(steps);
  let out: Float32Array = new Float32Array(PROBE);
  let draws = 0;
  let inputScale = 1;
  let x0: Float32Array | undefined;
  for (let i = 0; i <= k; i++) {
    const x = new Float32Array(PROBE);
    const m = new Float32Array(PROBE);
    const j = k - i; // this call is step k−j as seen from step k
    if (j <= MAX_HISTORY) {
      x[2 * j] = 1;
      m[2 * j + 1] = 1;
    }
    const generator = impulseNoise(i === k ? NOISE : -1, () => i === k && draws++);
    const scaled = scheduler.scaleModelInput(x, timesteps[i]); // also where some schedulers find their step index
    if (i === k) inputScale = scaled[0];
    ({ prevSample: out, predOriginalSample: x0 } = scheduler.step(m, timesteps[i], x, { generator }));
  }
  // x̂₀ of the form a·x_k + b·ε_k: nothing from older steps or the noise (elements 2 … PROBE − 1).
  const preview = x0 && x0.every((v, e) => e < 2 || v === 0) && Number.isFinite(x0[0]) && Number.isFinite(x0[1]) ? { sample: x0[0], output: x0[1] } : undefined;
  return {
    timestep: timesteps[k],
    inputScale,
    sampleCoefs: Array.from({ length: MAX_HISTORY + 1 }, (_, j) => out[2 * j]),
    outputCoefs: Array.from({ length: MAX_HISTORY + 1 }, (_, j) => out[2 * j + 1]),
    noiseCoef: out[NOISE],
    noiseDraws: draws,
    ...(preview ? { preview } : {}),
  };
}

/** A generator that returns zeros, with a 1 at `hot` (if in range); `onDraw` counts the draws. */
function impulseNoise(hot: number, onDraw?: () => unknown): NoiseGenerator {
  return {
    seed: 0,
    randn(n: number) {
      onDraw?.();
      const z = new Float32Array(n);
      if (hot >= 0 && hot < n) z[hot] = 1;
      return z;
    },
  };
}

function lastNonZero(a: number[], b: number[]): number {
  for (let j = a.length - 1; j > 0; j--) if (a[j] !== 0 || b[j] !== 0) return j;
  return 0;
}

/**
 * Runs the scheduler and the plan side by side on random inputs (large enough to trip any clipping): `step` tells
 * whether every step agrees, `preview` whether every step's x̂₀ does too.
 */
function agreesWithScheduler(plan: LinearPlan, createScheduler: () => Scheduler, steps: number, tolerance: number): { step: boolean; preview: boolean } {
  const close = (a: number, b: number) => Math.abs(a - b) <= tolerance * (1 + Math.abs(a)); // false for NaN
  let preview = plan.steps.every((s) => s.preview);
  const n = 64;
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const scheduler = createScheduler();
  scheduler.setTimesteps(steps);
  const xs: Float32Array[] = [Float32Array.from({ length: n }, () => 20 * random())];
  const ms: Float32Array[] = [];
  for (let k = 0; k < plan.steps.length; k++) {
    const m = Float32Array.from({ length: n }, () => 20 * random());
    ms.push(m);
    const noise: Float32Array[] = [];
    const generator: NoiseGenerator = { seed: 0, randn: (count) => { const z = Float32Array.from({ length: count }, random); noise.push(z); return z; } };
    const input = scheduler.scaleModelInput(xs[k], plan.timesteps[k]);
    const { prevSample: next, predOriginalSample: x0 } = scheduler.step(m, plan.timesteps[k], xs[k], { generator });
    const step = plan.steps[k];
    if (noise.length !== step.noiseDraws) return { step: false, preview: false };
    const predicted = applyLinearStep(step, xs, ms, k, noise[noise.length - 1]);
    for (let i = 0; i < n; i++) {
      if (!close(input[i], step.inputScale * xs[k][i]) || !close(next[i], predicted[i])) return { step: false, preview: false };
      if (preview && !close(x0![i], step.preview!.sample * xs[k][i] + step.preview!.output * m[i])) preview = false;
    }
    xs.push(next);
  }
  return { step: true, preview };
}

/**
 * x_{k+1} from the histories `xs` (x_0 … x_k) and `outputs` (ε_0 … ε_k) and this step's noise, in float64: the CPU
 * reference of the GPU kernel.
 */
export function applyLinearStep(step: LinearStep, xs: Float32Array[], outputs: Float32Array[], k: number, noise?: Float32Array): Float32Array {
  const out = new Float32Array(xs[k].length);
  for (let i = 0; i < out.length; i++) {
    let v = 0;
    step.sampleCoefs.forEach((c, j) => { if (c !== 0 && j <= k) v += c * xs[k - j][i]; });
    step.outputCoefs.forEach((c, j) => { if (c !== 0 && j <= k) v += c * outputs[k - j][i]; });
    if (step.noiseCoef !== 0) v += step.noiseCoef * (noise as Float32Array)[i];
    out[i] = v;
  }
  return out;
}

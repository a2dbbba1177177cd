// AdamW with decoupled weight decay, bias correction and global gradient-norm clipping, over named Float32Arrays.
// Follows torch.optim.AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", Alg. 2) and
// torch.nn.utils.clip_grad_norm_ (one L2 norm over all gradients; scale by max/(norm + 1e-6) when above max).
// Generic on purpose: the LoRA trainer and the base-model trainer both hand it Map<name, Float32Array>.
// Parameters are updated in place; moments are kept in Float32Array as torch keeps them in the parameter dtype.
// A run resumed from a checkpoint passes the saved moments and step count, so its updates continue bit for bit.

export interface AdamWOptions {
  lr: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.999
  eps?: number; // default 1e-8
  weightDecay?: number; // default 1e-2 (torch's AdamW default; the NPO recipe uses 1e-2 too)
  /** Clip the global L2 norm of the gradients to this value; Infinity (default) disables clipping. */
  maxGradNorm?: number;
}

export interface StepInfo {
  /** Global L2 norm of the gradients before clipping (NaN/Infinity when a gradient is not finite; no update then). */
  gradNorm: number;
  clipped: boolean;
  /** False when a gradient was not finite: the parameters and moments were left untouched. */
  applied: boolean;
}

export interface AdamW {
  readonly options: Required<AdamWOptions>;
  /** Number of updates applied so far (t in the bias corrections). */
  readonly steps: number;
  /** One update. `lr` overrides options.lr for this step (schedules). Every parameter needs a gradient. */
  step(grads: ReadonlyMap<string, Float32Array>, lr?: number): StepInfo;
  /** First and second moments, by parameter name (for checkpoints and tests). */
  moments(name: string): { m: Float32Array; v: Float32Array };
}

/** Saved optimizer state: the moments (used in place: the caller may checkpoint them) and t, the updates so far. */
export interface AdamWState {
  steps: number;
  moments: ReadonlyMap<string, { m: Float32Array; v: Float32Array }>;
}

export class OptimizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptimizerError';
  }
}

export function createAdamW(params: ReadonlyMap<string, Float32Array>, options: AdamWOptions, resume?: AdamWState): AdamW {
  const o: Required<AdamWOptions> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, maxGradNorm: Infinity, ...options };
  checkOptions(o);
  const state = new Map([...params].map(([name, p]) => [name, resume ? restored(resume, name, p.length) : { m: new Float32Array(p.length), v: new Float32Array(p.length) }]));
  if (resume && !(Number.isSafeInteger(resume.steps) && resume.steps >= 0)) throw new OptimizerError(`AdamW: resumed step count ${resume.steps} is not a non-negative integer`);
  let t = resume?.steps ?? 0;

  return {
    options: o,
    get steps() {
      return t;
    },
    moments(name) {
      const s = state.get(name);
      if (!s) throw new OptimizerError(`no parameter named ${name}`);
      return s;
    },
    step(grads, lr = o.lr) {
      checkGrads(params, grads);
      const gradNorm = globalNorm(grads.values());
      if (!Number.isFinite(gradNorm)) return { gradNorm, clipped: false, applied: false };
      const clipCoef = o.maxGradNorm / (gradNorm + 1e-6);
      const clip = clipCoef < 1 ? clipCoef : 1;
      t += 1;
      const bc1 = 1 - o.beta1 ** t;
      const bc2 = 1 - o.beta2 ** t;
      const stepSize = lr / bc1;
      const sqrtBc2 = Math.sqrt(bc2);
      const decay = 1 - lr * o.weightDecay;
      for (const [name, p] of params) {
        const g = grads.get(name)!;
        const { m, v } = state.get(name)!;
        for (let i = 0; i < p.length; i++) {
          const gi = g[i] * clip;
          m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
          v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
          p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / sqrtBc2 + o.eps);
        }
      }
      return { gradNorm, clipped: clip < 1, applied: true };
    },
  };
}

function restored(resume: AdamWState, name: string, length: number) {
  const s = resume.moments.get(name);
  if (!s) throw new OptimizerError(`AdamW: the resumed state has no moments for ${name}`);
  if (s.m.length !== length || s.v.length !== length) throw new OptimizerError(`AdamW: resumed moments of ${name} have ${s.m.length}/${s.v.length} values, the parameter ${length}`);
  return s;
}

/** L2 norm over all arrays, accumulated in float64. */
export function globalNorm(arrays: Iterable<Float32Array>): number {
  let sum = 0;
  for (const a of arrays) for (let i = 0; i < a.length; i++) sum += a[i] * a[i];
  return Math.sqrt(sum);
}

function checkOptions(o: Required<AdamWOptions>) {
  const bad = (what: string, v: number) => new OptimizerError(`AdamW: ${what} = ${v} is out of range`);
  if (!(o.lr >= 0) || !Number.isFinite(o.lr)) throw bad('lr', o.lr);
  if (!(o.beta1 >= 0 && o.beta1 < 1)) throw bad('beta1', o.beta1);
  if (!(o.beta2 >= 0 && o.beta2 < 1)) throw bad('beta2', o.beta2);
  if (!(o.eps > 0)) throw bad('eps', o.eps);
  if (!(o.weightDecay >= 0)) throw bad('weightDecay', o.weightDecay);
  if (!(o.maxGradNorm > 0)) throw bad('maxGradNorm', o.maxGradNorm);
}

function checkGrads(params: ReadonlyMap<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>) {
  for (const [name, p] of params) {
    const g = grads.get(name);
    if (!g) throw new OptimizerError(`AdamW: no gradient for parameter ${name}`);
    if (g.length !== p.length) throw new OptimizerError(`AdamW: gradient of ${name} has ${g.length} values, the parameter ${p.length}`);
  }
  for (const name of grads.keys()) if (!params.has(name)) throw new OptimizerError(`AdamW: gradient for unknown parameter ${name}`);
}

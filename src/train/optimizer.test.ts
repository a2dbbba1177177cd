// AdamW against a float64 transcription of torch.optim.AdamW's documented algorithm (amsgrad off, maximize off) and
// torch.nn.utils.clip_grad_norm_; plus properties that pin the bias correction (first step moves by lr·sign(g)).
import { describe, expect, it } from 'vitest';
import { createAdamW, globalNorm } from './optimizer.ts';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** torch docs: θ ← θ − γλθ; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; θ ← θ − γ m̂ / (√v̂ + ε). */
function referenceAdamW(p: number[], grads: number[][], o: { lr: number; b1: number; b2: number; eps: number; wd: number; maxNorm: number }) {
  const theta = [...p];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  grads.forEach((g0, k) => {
    const t = k + 1;
    const norm = Math.sqrt(g0.reduce((s, x) => s + x * x, 0));
    const coef = Math.min(1, o.maxNorm / (norm + 1e-6));
    const g = g0.map((x) => x * coef);
    for (let i = 0; i < theta.length; i++) {
      theta[i] -= o.lr * o.wd * theta[i];
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const mHat = m[i] / (1 - o.b1 ** t);
      const vHat = v[i] / (1 - o.b2 ** t);
      theta[i] -= (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
  });
  return theta;
}

describe('AdamW', () => {
  it('matches the float64 reference over 6 steps on two parameters, with clipping active (rel. 1e-5)', () => {
    const r = rng(3);
    const a = Float32Array.from({ length: 7 }, r);
    const b = Float32Array.from({ length: 5 }, r);
    const start = [...a, ...b];
    const grads = Array.from({ length: 6 }, (_, k) => Array.from({ length: 12 }, () => r() * (k % 2 ? 3 : 0.05)));
    const opt = createAdamW(new Map([['a', a], ['b', b]]), { lr: 0.01, weightDecay: 0.1, maxGradNorm: 1 });
    let clippedSteps = 0;
    for (const g of grads) {
      const info = opt.step(new Map([['a', Float32Array.from(g.slice(0, 7))], ['b', Float32Array.from(g.slice(7))]]));
      if (info.clipped) clippedSteps++;
      expect(info.gradNorm).toBeCloseTo(Math.sqrt(g.reduce((s, x) => s + Math.fround(x) ** 2, 0)), 5);
    }
    expect(clippedSteps).toBe(3);
    const want = referenceAdamW(start, grads.map((g) => g.map(Math.fround)), { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1, maxNorm: 1 });
    const got = [...a, ...b];
    const err = Math.max(...got.map((x, i) => Math.abs(x - want[i]) / Math.max(1e-3, Math.abs(want[i]))));
    expect(err).toBeLessThan(1e-5);
    expect(opt.steps).toBe(6);
  });

  it('first step moves each weight by lr·sign(g) when weight decay is 0 (bias correction)', () => {
    const p = new Float32Array([1, -2, 0.5]);
    const opt = createAdamW(new Map([['p', p]]), { lr: 0.1, weightDecay: 0 });
    opt.step(new Map([['p', new Float32Array([3, -0.001, 40])]]));
    expect([...p].map((x) => Number(x.toFixed(5)))).toEqual([0.9, -1.9, 0.4]);
  });

  it('resumed from saved moments and step count, continues exactly as an uninterrupted run', () => {
    const grad = (p: Float32Array, k: number) => new Map([['p', p.map((v, i) => 2 * (v - i) + Math.sin(k + i))]]);
    const whole = new Float32Array([3, -1, 0.5]);
    const a = createAdamW(new Map([['p', whole]]), { lr: 0.05, maxGradNorm: 1 });
    for (let k = 0; k < 10; k++) a.step(grad(whole, k));
    const part = new Float32Array([3, -1, 0.5]);
    const first = createAdamW(new Map([['p', part]]), { lr: 0.05, maxGradNorm: 1 });
    for (let k = 0; k < 4; k++) first.step(grad(part, k));
    const saved = { steps: first.steps, moments: new Map([['p', { m: first.moments('p').m.slice(), v: first.moments('p').v.slice() }]]) };
    const second = createAdamW(new Map([['p', part]]), { lr: 0.05, maxGradNorm: 1 }, saved);
    for (let k = 4; k < 10; k++) second.step(grad(part, k));
    expect([...part]).toEqual([...whole]);
    expect(second.steps).toBe(10);
    expect(() => createAdamW(new Map([['p', part]]), { lr: 0.1 }, { steps: 2, moments: new Map() })).toThrow(/no moments for p/);
    expect(() => createAdamW(new Map([['p', part]]), { lr: 0.1 }, { steps: -1, moments: saved.moments })).toThrow(/step count -1/);
  });

  it('minimises a quadratic', () => {
    const p = new Float32Array([5, -3]);
    const opt = createAdamW(new Map([['p', p]]), { lr: 0.05, weightDecay: 0 });
    for (let i = 0; i < 400; i++) opt.step(new Map([['p', new Float32Array([2 * (p[0] - 1), 2 * (p[1] + 2)])]]));
    expect(p[0]).toBeCloseTo(1, 1);
    expect(p[1]).toBeCloseTo(-2, 1);
  });

  it('skips an update with a non-finite gradient and leaves the weights untouched', () => {
    const p = new Float32Array([1, 2]);
    const opt = createAdamW(new Map([['p', p]]), { lr: 0.1 });
    const info = opt.step(new Map([['p', new Float32Array([NaN, 1])]]));
    expect(info.applied).toBe(false);
    expect(Number.isNaN(info.gradNorm)).toBe(true);
    expect([...p]).toEqual([1, 2]);
    expect(opt.steps).toBe(0);
  });

  it('rejects missing, unknown or mis-sized gradients and bad options with clear errors', () => {
    const opt = createAdamW(new Map([['p', new Float32Array(2)]]), { lr: 0.1 });
    expect(() => opt.step(new Map())).toThrow(/no gradient for parameter p/);
    expect(() => opt.step(new Map([['p', new Float32Array(3)]]))).toThrow(/3 values, the parameter 2/);
    expect(() => opt.step(new Map([['p', new Float32Array(2)], ['q', new Float32Array(1)]]))).toThrow(/unknown parameter q/);
    expect(() => createAdamW(new Map(), { lr: -1 })).toThrow(/lr = -1/);
    expect(() => createAdamW(new Map(), { lr: 1, beta2: 1 })).toThrow(/beta2/);
  });

  it('globalNorm is the L2 norm over all arrays', () => {
    expect(globalNorm([new Float32Array([3]), new Float32Array([4, 0])])).toBe(5);
  });
});

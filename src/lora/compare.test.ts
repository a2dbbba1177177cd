// compareLoras against a float64 reference on dense ΔW built by hand: a set against −2× itself (cosine −1, factor −2,
// nothing left over), against a set on other sites only (an error), and random sets (every figure from the formula).
import { describe, expect, it } from 'vitest';
import { compareLoras } from './compare.ts';
import type { LoraEntry, LoraSet } from './types.ts';

const SHAPES = [{ path: 'a.to_q', nIn: 5, nOut: 4 }, { path: 'b.to_out.0', nIn: 3, nOut: 6 }];

function random(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 32 - 0.5);
}

function loraSet(seed: number, rank = 2, paths = SHAPES.map((s) => s.path)): LoraSet {
  const r = random(seed);
  const entries = new Map<string, LoraEntry>();
  for (const { path, nIn, nOut } of SHAPES.filter((s) => paths.includes(s.path))) {
    const down = Float32Array.from({ length: rank * nIn }, r), up = Float32Array.from({ length: nOut * rank }, r);
    entries.set(path, { down, up, rank, scale: 0.5, inFeatures: nIn, outFeatures: nOut });
  }
  return { format: 'diffusers', entries, skipped: [], metadata: {} };
}

/** ΔW of every site, concatenated, in float64 straight from the definition. */
function denseReference(set: LoraSet): number[] {
  const out: number[] = [];
  for (const e of set.entries.values()) {
    for (let o = 0; o < e.outFeatures; o++) for (let i = 0; i < e.inFeatures; i++) {
      let s = 0;
      for (let k = 0; k < e.rank; k++) s += e.up[o * e.rank + k] * e.down[k * e.inFeatures + i];
      out.push(e.scale * s);
    }
  }
  return out;
}

const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i], 0);

describe('compareLoras', () => {
  it('a set against −2× itself: cosine −1, factor −2, no residual', () => {
    const a = loraSet(1);
    const b: LoraSet = { ...a, entries: new Map([...a.entries].map(([p, e]) => [p, { ...e, up: e.up.map((v) => -2 * v) }])) };
    const c = compareLoras(a, b);
    expect(c.sites).toBe(2);
    expect(c.cosine).toBeCloseTo(-1, 6);
    expect(c.factor).toBeCloseTo(-2, 6);
    expect(c.residual).toBeLessThan(1e-3);
    expect(c.normRatio).toBeCloseTo(2, 6);
    expect(c.siteCosines.max).toBeCloseTo(-1, 6);
  });

  it('random sets: every figure equals the float64 formula (tolerance 1e-6)', () => {
    const [a, b] = [loraSet(2), loraSet(3)];
    const [x, y] = [denseReference(a), denseReference(b)];
    const factor = dot(x, y) / dot(x, x);
    const left = y.map((v, i) => v - factor * x[i]);
    const c = compareLoras(a, b);
    expect(c.cosine).toBeCloseTo(dot(x, y) / Math.sqrt(dot(x, x) * dot(y, y)), 6);
    expect(c.factor).toBeCloseTo(factor, 6);
    expect(c.residual).toBeCloseTo(Math.sqrt(dot(left, left) / dot(y, y)), 6);
    expect(c.normRatio).toBeCloseTo(Math.sqrt(dot(y, y) / dot(x, x)), 6);
    expect(c.siteCosines.min).toBeLessThanOrEqual(c.siteCosines.mean);
    expect(c.siteCosines.mean).toBeLessThanOrEqual(c.siteCosines.max);
  });

  it('sets on different sites have nothing to compare', () => {
    expect(() => compareLoras(loraSet(4, 2, ['a.to_q']), loraSet(5, 2, ['b.to_out.0']))).toThrow(/no common site/);
  });
});

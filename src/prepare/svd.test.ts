// Truncated SVD against matrices of known spectrum: A = U·diag(s)·Vᵀ with random orthonormal U, V, so the optimal
// rank-r error is the singular-value tail sqrt(Σ_{i>r} s_i²) / sqrt(Σ s_i²) by construction (Eckart–Young), not by
// another SVD of ours.
import { describe, expect, it } from 'vitest';
import { jacobiSvd, truncatedSvd } from './svd.ts';

function normals(seed: number) {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 0.5) / 2 ** 32;
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** k orthonormal vectors of length n: classical Gram–Schmidt with re-orthogonalization on Gaussian vectors. */
function orthonormal(n: number, k: number, seed: number): Float64Array[] {
  const g = normals(seed);
  const out: Float64Array[] = [];
  while (out.length < k) {
    const v = Float64Array.from({ length: n }, g);
    for (let pass = 0; pass < 2; pass++) {
      for (const q of out) {
        let d = 0;
        for (let i = 0; i < n; i++) d += q[i] * v[i];
        for (let i = 0; i < n; i++) v[i] -= d * q[i];
      }
    }
    const norm = Math.hypot(...v);
    out.push(v.map((x) => x / norm));
  }
  return out;
}

function withSpectrum(rows: number, cols: number, s: number[], seed: number): Float64Array {
  const u = orthonormal(rows, s.length, seed);
  const v = orthonormal(cols, s.length, seed + 1);
  const a = new Float64Array(rows * cols);
  s.forEach((sv, k) => {
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) a[i * cols + j] += sv * u[k][i] * v[k][j];
  });
  return a;
}

const tail = (s: number[], r: number) => Math.sqrt(s.slice(r).reduce((a, x) => a + x * x, 0) / s.reduce((a, x) => a + x * x, 0));

describe('truncatedSvd', () => {
  it('exact path (tall): singular values to 1e-12, error equals the spectral tail', () => {
    const s = Array.from({ length: 24 }, (_, i) => 3 * 0.8 ** i);
    const a = withSpectrum(40, 24, s, 11);
    const svd = truncatedSvd(a, 40, 24, 5);
    expect(svd.exact).toBe(true);
    svd.singular.forEach((v, i) => expect(Math.abs(v - s[i])).toBeLessThan(1e-12 * s[0]));
    // up/down are stored as float32: the measured error carries ~1e-7 of rounding.
    expect(Math.abs(svd.relError - tail(s, 5))).toBeLessThan(1e-6);
  });

  it('exact path (wide): U and V swap roles correctly', () => {
    const s = [5, 4, 2, 1, 0.5, 0.25, 0.1];
    const a = withSpectrum(7, 30, s, 21);
    const svd = truncatedSvd(a, 7, 30, 3);
    expect(Math.abs(svd.relError - tail(s, 3))).toBeLessThan(1e-6);
    // Reconstruction with full rank is the matrix itself.
    const full = truncatedSvd(a, 7, 30, 7);
    expect(full.relError).toBeLessThan(1e-6);
  });

  it('randomized path on a 600×300 matrix: error within 0.1 % of the optimal tail', () => {
    const s = Array.from({ length: 60 }, (_, i) => 0.9 ** i);
    const a = withSpectrum(600, 300, s, 31);
    const svd = truncatedSvd(a, 600, 300, 8, { exactBelow: 64 });
    expect(svd.exact).toBe(false);
    expect(svd.up.length).toBe(600 * 8);
    expect(svd.down.length).toBe(8 * 300);
    expect(svd.relError / tail(s, 8) - 1).toBeLessThan(1e-3);
    expect(svd.relError).toBeGreaterThanOrEqual(tail(s, 8) * (1 - 1e-6));
  });

  it('zero matrix and rank above the size', () => {
    expect(truncatedSvd(new Float64Array(12), 3, 4, 2).relError).toBe(0);
    expect(truncatedSvd(withSpectrum(3, 4, [1, 1, 1], 5), 3, 4, 9).rank).toBe(3);
    expect(() => truncatedSvd(new Float64Array(5), 2, 3, 1)).toThrow(/5 values/);
  });

  it('jacobiSvd orthogonality: UᵀU = I', () => {
    const a = withSpectrum(12, 6, [6, 5, 4, 3, 2, 1], 41);
    const cols = Array.from({ length: 6 }, (_, c) => Float64Array.from({ length: 12 }, (_, i) => a[i * 6 + c]));
    const { u } = jacobiSvd(cols);
    for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) {
      let d = 0;
      for (let k = 0; k < 12; k++) d += u[i][k] * u[j][k];
      expect(Math.abs(d - (i === j ? 1 : 0))).toBeLessThan(1e-12);
    }
  });
});

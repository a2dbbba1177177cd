// Test support shared by the Node tests (merge.test.ts) and the Chromium check (merge.chromium.test.ts): deterministic
// cases, the float64 reference, the tolerance, and running one case on a device. Plain TS: runs in Node and pages.
// Tolerance (f32): the standard summation bound |gpu − ref| ≤ (Σ ranks + 8)·2⁻²³·M, where
// M = |W| + Σ|s|·Σ_k|B||A| + Σ|s_d|·|D| per element (the error of an n-term f32 sum is ≤ n·2⁻²⁴·Σ|terms|; the
// factor 2 and the +8 cover the scale products, the per-pass adds and FMA contraction).
// f16 adds the output rounding: 2⁻¹¹ relative, 2⁻²⁴ absolute (subnormals); the reference sees f16-rounded inputs.
import { createWeightBuffer, readBuffer } from './buffers.ts';
import { fromHalfArray, toHalfArray } from './half.ts';
import type { MergeDtype, MergeJob, MergeKernels, MergeTerm, WeightLayout } from './merge.ts';

/** Deterministic values in [-1, 1) (xorshift32), rounded to f32 so the reference sees exactly what the GPU sees. */
export function randomF32(count: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export type HostTerm =
  | { kind: 'lora'; down: Float32Array; up: Float32Array; rank: number; scale: number }
  | { kind: 'dense'; delta: Float32Array; scale: number };

export interface HostCase {
  inF: number;
  outF: number;
  layout: WeightLayout;
  base: Float32Array;
  terms: HostTerm[];
  /** Element offset of W' in the output buffer (a stacked [θ_pos; θ_neg] buffer); the elements before stay untouched. */
  outOffset?: number;
}

/** Element index of (o, i) in W for the layout. */
const at = (c: HostCase, o: number, i: number) => (c.layout === 'out-in' ? o * c.inF + i : i * c.outF + o);

/** Float64 W' and the magnitude bound M of every element (see the header). */
export function reference(c: HostCase, round: (x: number) => number = (x) => x) {
  const n = c.inF * c.outF;
  const value = new Float64Array(n);
  const mag = new Float64Array(n);
  for (let o = 0; o < c.outF; o++) {
    for (let i = 0; i < c.inF; i++) {
      const e = at(c, o, i);
      let v = round(c.base[e]);
      let m = Math.abs(v);
      for (const t of c.terms) {
        if (t.kind === 'dense') {
          v += t.scale * round(t.delta[e]);
          m += Math.abs(t.scale * round(t.delta[e]));
          continue;
        }
        let s = 0;
        let sa = 0;
        for (let k = 0; k < t.rank; k++) {
          const p = round(t.up[o * t.rank + k]) * round(t.down[k * c.inF + i]);
          s += p;
          sa += Math.abs(p);
        }
        v += t.scale * s;
        m += Math.abs(t.scale) * sa;
      }
      value[e] = v;
      mag[e] = m;
    }
  }
  return { value, mag };
}

export function makeCase(inF: number, outF: number, layout: WeightLayout, ranks: number[], dense: number[], seed: number): HostCase {
  const base = randomF32(inF * outF, seed);
  const terms: HostTerm[] = ranks.map((rank, j) => ({
    kind: 'lora',
    rank,
    down: randomF32(rank * inF, seed * 31 + j * 2 + 1),
    up: randomF32(outF * rank, seed * 31 + j * 2 + 2),
    scale: [0.75, -1.5, 0.3125, 2, -0.5][j % 5],
  }));
  dense.forEach((scale, j) => terms.push({ kind: 'dense', delta: randomF32(inF * outF, seed * 77 + j), scale }));
  return { inF, outF, layout, base, terms };
}

export function rankSum(c: HostCase): number {
  return c.terms.reduce((s, t) => s + (t.kind === 'lora' ? t.rank : 1), 0);
}

/** Largest |gpu − ref| / tolerance over all elements; ≤ 1 passes. */
export function worstRatio(got: Float64Array, ref: { value: Float64Array; mag: Float64Array }, tol: (e: number) => number): number {
  let worst = 0;
  for (let e = 0; e < got.length; e++) worst = Math.max(worst, Math.abs(got[e] - ref.value[e]) / tol(e));
  return worst;
}

const bytes = (dtype: MergeDtype) => (dtype === 'f16' ? 2 : 4);
const roundHalf = (x: number) => fromHalfArray(toHalfArray([x]))[0];

/** Per-element tolerance for a case (see the header). */
export function tolerance(c: HostCase, dtype: MergeDtype = 'f32') {
  const ref = reference(c, dtype === 'f16' ? roundHalf : undefined);
  const gamma = (rankSum(c) + 8) * 2 ** -23;
  const tol =
    dtype === 'f16'
      ? (e: number) => 2 ** -11 * Math.abs(ref.value[e]) + gamma * ref.mag[e] + 2 ** -24
      : (e: number) => gamma * ref.mag[e] + 1e-30;
  return { ref, tol };
}

/** Uploads cases, reads results back, and destroys every buffer it made in `destroy()`. */
export function createCaseRunner(device: GPUDevice) {
  const owned: GPUBuffer[] = [];
  const upload = (values: Float32Array, dtype: MergeDtype): GPUBuffer => {
    const data = dtype === 'f16' ? toHalfArray(values) : values;
    const buffer = createWeightBuffer(device, values.length * bytes(dtype), { data });
    owned.push(buffer);
    return buffer;
  };
  const empty = (count: number, dtype: MergeDtype = 'f32'): GPUBuffer => {
    const buffer = createWeightBuffer(device, count * bytes(dtype));
    owned.push(buffer);
    return buffer;
  };
  const toJob = (c: HostCase, dtype: MergeDtype = 'f32', out?: GPUBuffer): MergeJob => {
    const terms: MergeTerm[] = c.terms.map((t) =>
      t.kind === 'dense'
        ? { kind: 'dense', delta: upload(t.delta, dtype), scale: t.scale }
        : { kind: 'lora', down: upload(t.down, dtype), up: upload(t.up, dtype), rank: t.rank, scale: t.scale },
    );
    const n = c.inF * c.outF;
    const base = upload(c.base, dtype);
    const outOffset = c.outOffset ?? 0;
    return { base, out: out ?? empty(outOffset + n, dtype), inFeatures: c.inF, outFeatures: c.outF, layout: c.layout, terms, dtype, outOffset };
  };
  const readBack = async (buffer: GPUBuffer, count: number, dtype: MergeDtype = 'f32'): Promise<Float64Array> => {
    const raw = await readBuffer(device, buffer, count * bytes(dtype));
    return dtype === 'f16' ? fromHalfArray(new Uint16Array(raw)) : Float64Array.from(new Float32Array(raw));
  };
  /** Merges `c` and returns the worst |error| / tolerance (≤ 1 passes) and whether base came back untouched. */
  const check = async (kernels: MergeKernels, c: HostCase, dtype: MergeDtype = 'f32') => {
    const job = toJob(c, dtype);
    kernels.merge(job);
    const n = c.inF * c.outF;
    const offset = c.outOffset ?? 0;
    const written = await readBack(job.out, offset + n, dtype);
    const got = written.subarray(offset);
    const before = written.subarray(0, offset); // a fresh buffer is zero-filled; the merge must not spill into it
    const { ref, tol } = tolerance(c, dtype);
    const baseAfter = await readBack(job.base, n, dtype);
    const baseBefore = dtype === 'f16' ? fromHalfArray(toHalfArray(c.base)) : Float64Array.from(c.base);
    const worst = before.some((v) => v !== 0) ? Infinity : worstRatio(got, ref, tol);
    return { worst, baseIntact: baseAfter.every((v, e) => Object.is(v, baseBefore[e])) };
  };
  const destroy = () => owned.splice(0).forEach((b) => b.destroy());
  return { upload, empty, toJob, readBack, check, destroy };
}

/** The shape / rank / layout grid both the Node tests and the Chromium check run (small: SwiftShader is slow). */
export const STANDARD_CASES: { name: string; make: () => HostCase }[] = (['out-in', 'in-out'] as const).flatMap((layout) =>
  (
    [
      [1, 1, [1]],
      [17, 33, [4, 13]],
      [64, 48, [8, 1, 4]],
      [320, 40, [13, 8, 4, 1]],
    ] as [number, number, number[]][]
  ).map(([inF, outF, ranks], s) => ({
    name: `${layout} ${inF}→${outF}, ranks ${ranks.join(',')} + dense`,
    make: () => makeCase(inF, outF, layout, ranks, [0.25], 1000 + s),
  })),
).concat(
  // The second half of a stacked [2, in, out] buffer, at an aligned and at an unaligned (odd) element offset.
  [64 * 48, 17 * 33 + 3].map((outOffset, s) => ({
    name: `in-out ${s ? '17→33' : '64→48'} written at element ${outOffset} of a stacked buffer`,
    make: () => ({ ...makeCase(s ? 17 : 64, s ? 33 : 48, 'in-out', [4, 2], [0.5], 2000 + s), outOffset }),
  })),
);

// Test support shared by the Node tests (merge.test.ts) and the Chromium check (merge.chromium.test.ts): deterministic
// cases, the float64 reference, the tolerance, and running one case on a device. Plain TS: runs in Node and pages.
//
// Tolerance, per element. The GPU sums in f32: the standard summation bound gives |v̂ − v| ≤ E = (Σ ranks + 8)·2⁻²³·M,
// where v is the exact W' of the stored (f32- or f16-rounded) inputs and M = |W| + Σ|s|·Σ_k|B||A| + Σ|s_d|·|D| (an
// n-term f32 sum errs by ≤ n·2⁻²⁴·Σ|terms|; the factor 2 and the +8 cover the scale products, the per-pass adds, FMA
// contraction and an f32 result's rounding). An f16 W' then stores a binary16 neighbour of v̂: WGSL lets
// pack2x16float round either way (not only to nearest), so that adds up to one binary16 ulp of |v̂| ≤ |v| + E:
// tol = ulp₁₆(|v| + E) + E, with ulp₁₆(x) = 2^(max(⌊log₂ x⌋, −14) − 10) (2⁻²⁴ in the subnormal range). A job of
// several passes (more than two LoRAs or one dense term, see planPasses) stores and re-reads W' between passes, so
// each earlier pass adds one more ulp of an intermediate value, whose magnitude is at most M + E.
//
// Every tensor is uploaded at its element offset inside random filler bits, so a read at the wrong element or the wrong
// half of a word shows up as a wrong value, and a write outside W' (the other half of a shared f16 word included)
// shows up as changed filler, checked bit for bit.
import { floatToHalf, halfToFloat } from '../lora/float16.ts';
import { createWeightBuffer, readBuffer } from './buffers.ts';
import { bytesPerElement, type ElementType } from './element-type.ts';
import { planPasses, type MergeJob, type MergeKernels, type MergeTerm, type WeightLayout } from './merge.ts';

/** Deterministic values in [-1, 1) (xorshift32), rounded to f32 so the reference sees exactly what the GPU sees. */
export function randomF32(count: number, seed: number): Float32Array {
  const bits = randomBits(count, seed);
  return Float32Array.from(bits, (s) => s / 2 ** 31 - 1);
}

/** Deterministic u32 words (xorshift32): filler around the tensors. */
export function randomBits(count: number, seed: number): Uint32Array {
  let s = seed >>> 0 || 1;
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s;
  }
  return out;
}

export type HostTerm =
  | { kind: 'lora'; down: Float32Array; up: Float32Array; rank: number; scale: number }
  | { kind: 'dense'; delta: Float32Array; scale: number; dtype?: ElementType; offset?: number };

export interface HostCase {
  /** W's matrix shape; W has inF·outF elements. */
  inF: number;
  outF: number;
  layout: WeightLayout;
  /** Submit W as a plain element count (a dense-only job of any shape), not as a matrix. */
  flat?: boolean;
  /** Element type of W and W' (default f32). */
  dtype?: ElementType;
  base: Float32Array;
  terms: HostTerm[];
  /** Element offset of W in its buffer. */
  baseOffset?: number;
  /** Element offset of W' in the output buffer (a stacked [θ_pos; θ_neg] buffer); the filler around it must survive. */
  outOffset?: number;
  /** Merge in place: W' overwrites W (out = base, outOffset = baseOffset). */
  inPlace?: boolean;
}

const elements = (c: HostCase) => c.inF * c.outF;

/** Element index of (o, i) in W for the layout. */
const at = (c: HostCase, o: number, i: number) => (c.layout === 'out-in' ? o * c.inF + i : i * c.outF + o);

/** The value an element of `type` stores for x (f16: round to nearest even, as numpy's astype does). */
export const stored = (type: ElementType = 'f32', x: number): number => (type === 'f16' ? halfToFloat(floatToHalf(x)) : Math.fround(x));

/** Float64 W' of the stored inputs and the magnitude bound M of every element (see the header). */
export function reference(c: HostCase) {
  const n = elements(c);
  const value = new Float64Array(n);
  const mag = new Float64Array(n);
  for (let e = 0; e < n; e++) value[e] = stored(c.dtype, c.base[e]);
  mag.set(value.map(Math.abs));
  for (const t of c.terms) {
    if (t.kind === 'dense') {
      for (let e = 0; e < n; e++) {
        const d = t.scale * stored(t.dtype ?? c.dtype, t.delta[e]);
        value[e] += d;
        mag[e] += Math.abs(d);
      }
      continue;
    }
    for (let o = 0; o < c.outF; o++) {
      for (let i = 0; i < c.inF; i++) {
        let s = 0;
        let sa = 0;
        for (let k = 0; k < t.rank; k++) {
          const p = t.up[o * t.rank + k] * t.down[k * c.inF + i];
          s += p;
          sa += Math.abs(p);
        }
        value[at(c, o, i)] += t.scale * s;
        mag[at(c, o, i)] += Math.abs(t.scale) * sa;
      }
    }
  }
  return { value, mag };
}

const LORA_SCALES = [0.75, -1.5, 0.3125, 2, -0.5];

export function makeCase(inF: number, outF: number, layout: WeightLayout, ranks: number[], dense: number[], seed: number): HostCase {
  const base = randomF32(inF * outF, seed);
  const terms: HostTerm[] = ranks.map((rank, j) => ({
    kind: 'lora',
    rank,
    down: randomF32(rank * inF, seed * 31 + j * 2 + 1),
    up: randomF32(outF * rank, seed * 31 + j * 2 + 2),
    scale: LORA_SCALES[j % LORA_SCALES.length],
  }));
  dense.forEach((scale, j) => terms.push({ kind: 'dense', delta: randomF32(inF * outF, seed * 77 + j), scale }));
  return { inF, outF, layout, base, terms };
}

/** A dense-only case for a tensor of any shape (`dims`), submitted as an element count. */
export function makeFlatCase(dims: number[], dtype: ElementType, dense: { scale: number; dtype: ElementType }[], seed: number): HostCase {
  const n = dims.reduce((a, b) => a * b, 1);
  const terms: HostTerm[] = dense.map((d, j) => ({ kind: 'dense', delta: randomF32(n, seed * 77 + j), ...d }));
  return { inF: n, outF: 1, layout: 'out-in', flat: true, dtype, base: randomF32(n, seed), terms };
}

export function rankSum(c: HostCase): number {
  return c.terms.reduce((s, t) => s + (t.kind === 'lora' ? t.rank : 1), 0);
}

/** One binary16 ulp at magnitude x (see the header). */
export const halfUlp = (x: number): number => 2 ** (Math.max(Math.floor(Math.log2(x)), -14) - 10);

/** Per-element tolerance for a case (see the header). */
export function tolerance(c: HostCase) {
  const ref = reference(c);
  const gamma = (rankSum(c) + 8) * 2 ** -23;
  const sumError = (e: number) => gamma * ref.mag[e];
  const passes = planPasses(c.terms as unknown as MergeTerm[]).length; // planPasses reads only kind and scale
  const halfTol = (e: number) =>
    halfUlp(Math.abs(ref.value[e]) + sumError(e)) + (passes - 1) * halfUlp(ref.mag[e] + sumError(e)) + sumError(e);
  const tol = c.dtype === 'f16' ? halfTol : (e: number) => sumError(e) + 1e-30;
  return { ref, tol };
}

/** Largest |gpu − ref| / tolerance over all elements; ≤ 1 passes (NaN counts as a failure). */
export function worstRatio(got: Float64Array, ref: { value: Float64Array }, tol: (e: number) => number): number {
  let worst = 0;
  for (let e = 0; e < got.length; e++) {
    const ratio = Math.abs(got[e] - ref.value[e]) / tol(e);
    worst = Number.isNaN(ratio) ? Infinity : Math.max(worst, ratio);
  }
  return worst;
}

const FILLER_AFTER = 3; // elements of filler after each tensor: the rest of its last word and a word beyond

/** Random bytes with room for `count` elements of `type` at element `offset`, and filler after them. */
const fillerBytes = (count: number, type: ElementType, offset: number, seed: number): Uint8Array =>
  new Uint8Array(randomBits(Math.ceil(((offset + count + FILLER_AFTER) * bytesPerElement(type)) / 4), seed).buffer);

/** The bytes of `values` stored as `type`, at element `offset` of a buffer otherwise filled with random bits. */
export function tensorBytes(values: ArrayLike<number>, type: ElementType, offset: number, seed: number): Uint8Array {
  const bytes = fillerBytes(values.length, type, offset, seed);
  const view = new DataView(bytes.buffer);
  for (let e = 0; e < values.length; e++) {
    if (type === 'f16') view.setUint16((offset + e) * 2, floatToHalf(values[e]), true);
    else view.setFloat32((offset + e) * 4, values[e], true);
  }
  return bytes;
}

/** Elements [offset, offset + count) of `bytes` as numbers. */
export function decode(bytes: Uint8Array, type: ElementType, offset: number, count: number): Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float64Array.from({ length: count }, (_, e) =>
    type === 'f16' ? halfToFloat(view.getUint16((offset + e) * 2, true)) : view.getFloat32((offset + e) * 4, true),
  );
}

const bytesOf = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);

/** Whether `after` equals `before` outside bytes [from, to). */
function sameOutside(before: Uint8Array, after: Uint8Array, from: number, to: number): boolean {
  return before.every((v, i) => (i >= from && i < to) || after[i] === v);
}

/** Uploads cases, reads results back, and destroys every buffer it made in `destroy()`. */
export function createCaseRunner(device: GPUDevice) {
  const owned: GPUBuffer[] = [];
  const make = (data: Uint8Array): GPUBuffer => {
    const buffer = createWeightBuffer(device, data.byteLength, { data });
    owned.push(buffer);
    return buffer;
  };
  const upload = (values: Float32Array, type: ElementType = 'f32', offset = 0, seed = 1) => make(tensorBytes(values, type, offset, seed));
  const empty = (count: number, type: ElementType = 'f32'): GPUBuffer => make(new Uint8Array(Math.ceil((count * bytesPerElement(type)) / 4) * 4));
  const readBytes = async (buffer: GPUBuffer) => new Uint8Array(await readBuffer(device, buffer));
  const readBack = async (buffer: GPUBuffer, count: number, type: ElementType = 'f32', offset = 0) => decode(await readBytes(buffer), type, offset, count);

  /** The job for `c`; `out` defaults to a filler buffer with room for W' at c.outOffset. */
  const toJob = (c: HostCase, out?: GPUBuffer): MergeJob => {
    const dtype = c.dtype ?? 'f32';
    const terms: MergeTerm[] = c.terms.map((t, j) =>
      t.kind === 'dense'
        ? { kind: 'dense', delta: upload(t.delta, t.dtype ?? dtype, t.offset, 300 + j), scale: t.scale, dtype: t.dtype, offset: t.offset }
        : { kind: 'lora', down: make(bytesOf(t.down)), up: make(bytesOf(t.up)), rank: t.rank, scale: t.scale },
    );
    const baseOffset = c.baseOffset ?? 0;
    const base = upload(c.base, dtype, baseOffset, 100);
    const outOffset = c.inPlace ? baseOffset : (c.outOffset ?? 0);
    const target = c.inPlace ? base : (out ?? make(fillerBytes(elements(c), dtype, outOffset, 200)));
    const shape = c.flat ? { elements: elements(c) } : { inFeatures: c.inF, outFeatures: c.outF, layout: c.layout };
    return { ...shape, base, out: target, terms, dtype: c.dtype, baseOffset: c.baseOffset, outOffset };
  };

  /**
   * Merges `c` and returns the worst |error| / tolerance (≤ 1 passes), whether base came back bit for bit (in place:
   * true) and whether every bit of `out` outside W' did.
   */
  const check = async (kernels: MergeKernels, c: HostCase) => {
    const job = toJob(c);
    const type = c.dtype ?? 'f32';
    const [baseBefore, outBefore] = [await readBytes(job.base), await readBytes(job.out)];
    kernels.merge(job);
    const [baseAfter, outAfter] = [await readBytes(job.base), await readBytes(job.out)];
    const n = elements(c);
    const offset = job.outOffset ?? 0;
    const b = bytesPerElement(type);
    const { ref, tol } = tolerance(c);
    return {
      worst: worstRatio(decode(outAfter, type, offset, n), ref, tol),
      baseIntact: !!c.inPlace || sameOutside(baseBefore, baseAfter, 0, 0),
      othersIntact: sameOutside(outBefore, outAfter, offset * b, (offset + n) * b),
    };
  };
  const destroy = () => owned.splice(0).forEach((b) => b.destroy());
  return { upload, empty, toJob, readBack, check, destroy };
}

/** f16 storage: odd counts, odd offsets (stacked halves sharing a word), mixed dense types, in place, flat shapes. */
/** Sets every dense term's element type and offset in its buffer. */
function withDense(c: HostCase, dense: { dtype?: ElementType; offset?: number }): HostCase {
  return { ...c, terms: c.terms.map((t) => (t.kind === 'dense' ? { ...t, ...dense } : t)) };
}

/** f16 storage: odd counts, odd offsets (stacked halves sharing a word), mixed dense types, in place, flat shapes. */
const F16_CASES: { name: string; make: () => HostCase }[] = [
  {
    name: 'f16 W, in-out 17→33 (561 elements, odd), ranks 4,13 + f16 dense',
    make: () => ({ ...makeCase(17, 33, 'in-out', [4, 13], [0.25], 3001), dtype: 'f16' }),
  },
  {
    name: 'f16 W with an f32 dense term, out-in 33→17',
    make: () => withDense({ ...makeCase(33, 17, 'out-in', [8], [0.5], 3002), dtype: 'f16' }, { dtype: 'f32' }),
  },
  {
    name: 'f32 W with an f16 dense term, in-out 33→17',
    make: () => withDense(makeCase(33, 17, 'in-out', [3], [-0.75], 3003), { dtype: 'f16' }),
  },
  {
    name: "f16 θ_neg after an odd θ_pos: W' at element 561 of a stacked buffer, W and D at odd offsets",
    make: () => withDense({ ...makeCase(17, 33, 'out-in', [4, 2], [0.5], 3004), dtype: 'f16', outOffset: 561, baseOffset: 7 }, { offset: 3 }),
  },
  {
    name: 'f16 1→1 at odd element 1 (a word shared with the element before)',
    make: () => ({ ...makeCase(1, 1, 'in-out', [1], [0.5], 3005), dtype: 'f16', outOffset: 1 }),
  },
  {
    name: 'f16 three LoRAs and a dense term (two passes), in-out 24→19',
    make: () => ({ ...makeCase(24, 19, 'in-out', [2, 5, 3], [1], 3006), dtype: 'f16' }),
  },
  {
    name: 'f16 in place at odd element 5 (θ_pos over θ), rank 4 + dense',
    make: () => ({ ...makeCase(13, 21, 'out-in', [4], [-1], 3007), dtype: 'f16', inPlace: true, baseOffset: 5 }),
  },
  {
    name: 'flat f16 conv weight [5, 7, 3, 3], f16 η and f32 δ',
    make: () => makeFlatCase([5, 7, 3, 3], 'f16', [{ scale: 1.5, dtype: 'f16' }, { scale: -0.5, dtype: 'f32' }], 3008),
  },
  {
    name: 'flat f16 GroupNorm scale [13, 1, 1] written at odd element 13',
    make: () => ({ ...makeFlatCase([13, 1, 1], 'f16', [{ scale: 0.5, dtype: 'f16' }], 3009), outOffset: 13 }),
  },
  { name: 'flat f32 bias [1] with an f16 η', make: () => makeFlatCase([1], 'f32', [{ scale: 2, dtype: 'f16' }], 3010) },
];

/** The shape / rank / layout / type grid both the Node tests and the Chromium check run (small: SwiftShader is slow). */
export const STANDARD_CASES: { name: string; make: () => HostCase }[] = (['out-in', 'in-out'] as const)
  .flatMap((layout) =>
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
  )
  .concat(
    // The second half of a stacked [2, in, out] buffer, at an aligned and at an unaligned (odd) element offset.
    [64 * 48, 17 * 33 + 3].map((outOffset, s) => ({
      name: `in-out ${s ? '17→33' : '64→48'} written at element ${outOffset} of a stacked buffer`,
      make: () => ({ ...makeCase(s ? 17 : 64, s ? 33 : 48, 'in-out', [4, 2], [0.5], 2000 + s), outOffset }),
    })),
  )
  .concat(F16_CASES);

// PyTorch's CPU Gaussian generator, bit for bit: `torch.manual_seed(seed); torch.randn(n)` on a float32 tensor.
// Every operation below is an IEEE-754 operation with one defined result (integer maths, +, −, ×, √, float32 rounding,
// an exactly emulated fused multiply-add), so it gives the same bits in Node, a Worker and the page, on any engine.
//
// What ATen does (aten/src/ATen/native/cpu/DistributionTemplates.h, ATen/core/DistributionsHelper.h,
// ATen/core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp):
// - The engine is the standard 32-bit MT19937, seeded with the low 32 bits of the seed (Matsumoto's init_genrand).
// - float uniform = (next() & (2²⁴−1))·2⁻²⁴; double uniform = (((hi << 32) | lo) & (2⁵³−1))·2⁻⁵³, first draw high.
// - n ≥ 16 (contiguous float32): draw n float uniforms first, then Box–Muller in blocks of 16 pairing lane j with
//   lane j+8: out[j] = √(−2 ln(1−u[j]))·cos(2π u[j+8]), out[j+8] = …·sin(…). If n is not a multiple of 16 the last
//   16 outputs are recomputed from 16 fresh uniforms. On x86-64 builds (CPU_CAPABILITY_AVX2, what nearly every
//   diffusers user runs) ln/sin/cos are the Cephes float32 polynomials of avx_mathfun.h, compiled by GCC with FMA
//   contraction; we emulate that path. (ARM/AVX-512 builds use libm's logf/sinf/cosf and can differ in the last bit.)
// - n < 16: one double Box–Muller per pair, u1 for the angle, u2 for the radius (√(−2·log1p(−u2))), the sine half
//   cached in the generator for the next draw (also across calls), each result rounded to float32.

const N = 624;
const M = 397;

export class Mt19937 {
  private readonly state = new Uint32Array(N);
  private index = N;

  constructor(seed: number) {
    const s = this.state;
    s[0] = seed >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = s[i - 1] ^ (s[i - 1] >>> 30);
      s[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < N; i++) {
      const y = (s[i] & 0x80000000) | (s[(i + 1) % N] & 0x7fffffff);
      s[i] = s[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  /** One tempered 32-bit draw (CPUGeneratorImpl::random). */
  next(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}

const f32 = Math.fround;
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

function f32FromBits(b: number): number {
  scratchU32[0] = b >>> 0;
  return scratchF32[0];
}

/** Next float32 after r in the direction of `toward` (r, toward finite and different). */
function f32Neighbour(r: number, toward: number): number {
  if (r === 0) return toward > 0 ? f32FromBits(1) : f32FromBits(0x80000001);
  const b = f32Bits(r);
  return f32FromBits(toward > r === r > 0 ? b + 1 : b - 1);
}

/**
 * fmaf(a, b, c) for float32 a, b, c: a·b is exact in float64; the sum is rounded once to float64 and its error kept
 * (TwoSum); the only case where rounding that to float32 is wrong is a float64 sum exactly halfway between two float32
 * values, which the error term then decides.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const err = p - (s - bb) + (c - bb);
  const r = f32(s);
  if (err === 0 || r === s || !Number.isFinite(s)) return r;
  const other = f32Neighbour(r, s);
  if (2 * s !== r + other) return r;
  return err > 0 === other > r ? other : r;
}

// avx_mathfun.h constants, rounded to float32 as the _PS256_CONST tables store them.
const SQRTHF = f32(0.707106781186547524);
const LOG_P = [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1].map(f32);
const LOG_Q1 = f32(-2.12194440e-4);
const LOG_Q2 = f32(0.693359375);
const FOPI = f32(1.27323954473516);
const DP1 = f32(-0.78515625);
const DP2 = f32(-2.4187564849853515625e-4);
const DP3 = f32(-3.77489497744594108e-8);
const SINCOF = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32);
const COSCOF = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32);
const TWO_PI = f32(2 * Math.PI);
const MIN_NORM = f32FromBits(0x00800000);

/** log256_ps, one lane, for x in (0, 1]. GCC contracts mul+add pairs into FMAs as noted. */
export function cephesLogF32(x0: number): number {
  const x1 = Math.max(x0, MIN_NORM);
  const bits = f32Bits(x1);
  let e = f32(((bits >>> 23) - 0x7f) + 1);
  let x = f32FromBits((bits & ~0x7f800000) | 0x3f000000); // mantissa scaled into [0.5, 1)
  const small = x < SQRTHF;
  const tmp = small ? x : 0;
  x = f32(x - 1);
  if (small) e = f32(e - 1);
  x = f32(x + tmp);
  const z = f32(x * x);
  let y = LOG_P[0];
  for (let i = 1; i < LOG_P.length; i++) y = fmaF32(y, x, LOG_P[i]);
  y = f32(y * x);
  y = fmaF32(y, z, f32(e * LOG_Q1)); // add(mul(y, z), mul(e, q1)): the first product is the fused one
  y = fmaF32(-z, 0.5, y); // sub(y, mul(z, 0.5))
  x = f32(x + y);
  x = fmaF32(e, LOG_Q2, x);
  return x0 <= 0 ? NaN : x;
}

/** sincos256_ps, one lane, for x ≥ 0 (θ = 2πu here). Returns [sin, cos]. */
export function cephesSinCosF32(x0: number): [number, number] {
  let x = Math.abs(x0);
  let j = Math.trunc(f32(x * FOPI));
  j = (j + 1) & ~1;
  const y = j; // exact in float32 for the arguments used here (|x| < 8)
  const sinSwap = (j & 4) !== 0;
  const polyIsSin = (j & 2) === 0;
  const cosSwap = (~(j - 2) & 4) !== 0;
  x = fmaF32(y, DP1, x);
  x = fmaF32(y, DP2, x);
  x = fmaF32(y, DP3, x);
  const z = f32(x * x);
  let c = COSCOF[0];
  c = fmaF32(c, z, COSCOF[1]);
  c = fmaF32(c, z, COSCOF[2]);
  c = f32(c * z);
  c = fmaF32(c, z, -f32(z * 0.5)); // sub(mul(y, z), mul(z, 0.5))
  c = f32(c + 1);
  let s = SINCOF[0];
  s = fmaF32(s, z, SINCOF[1]);
  s = fmaF32(s, z, SINCOF[2]);
  s = f32(s * z);
  s = fmaF32(s, x, x);
  let sin = polyIsSin ? s : c;
  let cos = polyIsSin ? c : s;
  if ((x0 < 0 || Object.is(x0, -0)) !== sinSwap) sin = -sin;
  if (cosSwap) cos = -cos;
  return [sin, cos];
}

/** normal_fill_16_AVX2 with mean 0, std 1, in place on d[o..o+16). */
function normalFill16(d: Float32Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f32(1 - d[o + j]);
    const u2 = d[o + j + 8];
    const radius = f32(Math.sqrt(f32(-2 * cephesLogF32(u1))));
    const [sin, cos] = cephesSinCosF32(f32(TWO_PI * u2));
    d[o + j] = f32(radius * cos);
    d[o + j + 8] = f32(radius * sin);
  }
}

/** A torch CPU generator: the MT19937 stream plus the cached second Box–Muller value of the double path. */
export class TorchCpuGenerator {
  private readonly mt: Mt19937;
  private cachedNormal: number | null = null;

  constructor(seed: number) {
    this.mt = new Mt19937(seed);
  }

  uniformF32(): number {
    return (this.mt.next() & 0xffffff) * 2 ** -24;
  }

  uniformF64(): number {
    const hi = this.mt.next();
    const lo = this.mt.next();
    return ((hi & 0x1fffff) * 2 ** 32 + lo) * 2 ** -53;
  }

  /** at::normal_distribution<double>: returns the cached sine half when there is one. */
  private normalF64(): number {
    if (this.cachedNormal !== null) {
      const v = this.cachedNormal;
      this.cachedNormal = null;
      return v;
    }
    const u1 = this.uniformF64();
    const u2 = this.uniformF64();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** torch.randn(n) (any shape with n elements, contiguous, float32). */
  randn(n: number): Float32Array {
    const d = new Float32Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) d[i] = this.normalF64();
      return d;
    }
    for (let i = 0; i < n; i++) d[i] = this.uniformF32();
    for (let o = 0; o + 16 <= n; o += 16) normalFill16(d, o);
    if (n % 16 !== 0) {
      const o = n - 16;
      for (let i = 0; i < 16; i++) d[o + i] = this.uniformF32();
      normalFill16(d, o);
    }
    return d;
  }
}

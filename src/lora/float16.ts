// IEEE 754 binary16 and bfloat16 <-> float32 conversion (no Math.f16round / Float16Array on Node 20).
// Encoding rounds to nearest, ties to even, like numpy's astype(float16) and torch's .half().

let halfTable: Float32Array | null = null;

/** Float32 value of every one of the 65536 half bit patterns (built once, 256 KiB). */
function table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 31;
    const m = h & 1023;
    if (e === 0) t[h] = sign * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : sign * Infinity;
    else t[h] = sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  halfTable = t;
  return t;
}

export function halfToFloat(h: number): number {
  return table()[h & 0xffff];
}

export function decodeHalfArray(src: Uint16Array): Float32Array {
  const t = table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Round a number to the nearest binary16 bit pattern (ties to even; overflow gives ±Inf, NaN stays NaN). */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // half subnormal: value = q * 2^-24 with q = full >> shift, where full is the 24-bit float significand.
    const shift = 126 - exp;
    if (shift >= 25) return sign; // below half of the smallest subnormal (2^-25): rounds to zero
    const full = mant | 0x800000;
    let q = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && q & 1)) q++;
    return sign | q; // q may reach 0x400, which is exactly the smallest normal
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && q & 1)) q++; // a carry into the exponent is correct (may give Inf)
  return sign | q;
}

/** bfloat16 is the top 16 bits of a float32. */
export function decodeBf16Array(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return new Float32Array(bits.buffer);
}

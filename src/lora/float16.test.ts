// binary16 conversion against published bit patterns (IEEE 754-2008 table values) and an exhaustive round trip.
import { describe, expect, it } from 'vitest';
import { floatToHalf, halfToFloat } from './float16.ts';

describe('half precision conversion', () => {
  it('encodes known values', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest finite
      [65520, 0x7c00], // rounds up to Inf (halfway to 2^16, ties to even)
      [65519, 0x7bff],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to it: ties to even (0)
      [1.5 * 2 ** -25, 0x0001],
      [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even mantissa
      [1 + 3 * 2 ** -11, 0x3c02], // tie: rounds to even (up)
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
    ];
    for (const [value, bits] of cases) expect(floatToHalf(value), String(value)).toBe(bits);
    expect(floatToHalf(NaN) & 0x7c00).toBe(0x7c00);
    expect(floatToHalf(NaN) & 0x3ff).not.toBe(0);
  });

  it('round-trips every non-NaN bit pattern exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) continue;
      expect(floatToHalf(v)).toBe(h);
    }
  });
});

// cast.wgsl on Dawn + SwiftShader in Node, against src/lora/float16.ts (the CPU's binary16 conversion, round to nearest
// even) and Math.fround. What is asserted is what WGSL guarantees, plus our own special-value handling (half.wgsl):
// - f16 → f32 is exact for every one of the 65536 bit patterns (binary16 ⊂ binary32), subnormals included; NaN stays
//   NaN, ±Inf stays ±Inf.
// - f32 → f16 gives NaN → 0x7e00 (sign kept), ±Inf and |x| ≥ 65520 → ±Inf, exactly as floatToHalf; any other x one of
//   its two binary16 neighbours (WGSL does not fix the rounding direction), the nearest-even one where x is exact.
// - the scale multiplies in f32 (correctly rounded in WGSL), so f32 → f32 equals Math.fround(scale·x) exactly.
// - bits of dst outside [dstOffset, dstOffset + count), the other half of a shared f16 word included, are unchanged.
// Offsets past 256 bytes exercise the binding windows (cast.ts binds the range, not the whole buffer).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { floatToHalf, halfToFloat } from '../lora/float16.ts';
import { createWeightBuffer, readBuffer } from './buffers.ts';
import { createCastKernels, type CastDispatch, type CastKernels } from './cast.ts';
import { acquireDevice } from './device.ts';
import { bytesPerElement, type ElementType } from './element-type.ts';
import { decode, randomBits, randomF32 } from './merge-check.ts';
import { createNodeGpu } from './node-gpu.ts';
import { createParamSlots, type ParamSlots } from './param-slots.ts';

let device: GPUDevice;
let kernels: CastKernels;
let params: ParamSlots;
const gpuErrors: string[] = [];

beforeAll(async () => {
  ({ device } = await acquireDevice(await createNodeGpu(), { onUncapturedError: (e) => gpuErrors.push(e.message) }));
  kernels = createCastKernels(device);
  params = createParamSlots(device, 4);
});
afterAll(() => device?.destroy());

const FILLER = 3; // elements of random bits after the range, like before it
const owned: GPUBuffer[] = [];
/** A buffer of random bits with room for `count` elements of `type` at element `offset`, `data` written there. */
function buffer(type: ElementType, offset: number, count: number, seed: number, data?: Uint8Array): GPUBuffer {
  const bytes = new Uint8Array(randomBits(Math.ceil(((offset + count + FILLER) * bytesPerElement(type)) / 4), seed).buffer);
  if (data) bytes.set(data, offset * bytesPerElement(type));
  const b = createWeightBuffer(device, bytes.byteLength, { data: bytes });
  owned.push(b);
  return b;
}
const halfBytes = (bits: ArrayLike<number>) => new Uint8Array(Uint16Array.from(bits).buffer);
const floatBytes = (values: ArrayLike<number>) => new Uint8Array(Float32Array.from(values).buffer);

/** Runs one cast; returns dst's bytes before and after. */
async function run(d: CastDispatch): Promise<{ before: Uint8Array; after: Uint8Array }> {
  const before = new Uint8Array(await readBuffer(device, d.dst));
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  kernels.encodeCast(pass, params, 0, d);
  pass.end();
  device.queue.submit([encoder.finish()]);
  return { before, after: new Uint8Array(await readBuffer(device, d.dst)) };
}

/** Whether every byte of dst outside the written range came back unchanged. */
function restIntact({ before, after }: { before: Uint8Array; after: Uint8Array }, d: CastDispatch): boolean {
  const b = bytesPerElement(d.to);
  return before.every((v, i) => (i >= d.dstOffset * b && i < (d.dstOffset + d.count) * b) || after[i] === v);
}

const ALL_HALVES = Array.from({ length: 65536 }, (_, h) => h);

describe('cast kernel (Dawn/SwiftShader) vs src/lora/float16.ts', () => {
  it('f16 → f32: all 65536 bit patterns, from odd element 1 to odd element 3, exactly', async () => {
    const d: CastDispatch = { src: buffer('f16', 1, 65536, 1, halfBytes(ALL_HALVES)), srcOffset: 1, dst: buffer('f32', 3, 65536, 2), dstOffset: 3, count: 65536, from: 'f16', to: 'f32' };
    const result = await run(d);
    const got = decode(result.after, 'f32', 3, 65536);
    const wrong = ALL_HALVES.filter((h) => {
      const want = halfToFloat(h);
      return Number.isNaN(want) ? !Number.isNaN(got[h]) : !Object.is(got[h], want);
    });
    expect(wrong.map((h) => h.toString(16))).toEqual([]);
    expect(restIntact(result, d)).toBe(true);
  });

  it('f32 → f16: specials as floatToHalf, every other value a binary16 neighbour, odd count at odd element 5', async () => {
    const specials = [NaN, -NaN, Infinity, -Infinity, 65504, 65519, 65520, -65520, 1e6, -0, 0, 2 ** -14, 2 ** -24, 2 ** -25,
      1.5 * 2 ** -25, 3 * 2 ** -26, 1e-40, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 / 3, -2.980712565658905e-8];
    const bits = randomBits(20001, 7); // every kind of f32: NaNs, ±Inf, overflow, subnormals, normals
    const values = Float32Array.from([...specials, ...new Float32Array(bits.buffer)]);
    const count = values.length;
    const d: CastDispatch = { src: buffer('f32', 0, count, 3, floatBytes(values)), srcOffset: 0, dst: buffer('f16', 5, count, 4), dstOffset: 5, count, from: 'f32', to: 'f16' };
    const result = await run(d);
    const view = new DataView(result.after.buffer);
    let notNearest = 0;
    const wrong: string[] = [];
    values.forEach((x, i) => {
      const got = view.getUint16((5 + i) * 2, true);
      const nearest = floatToHalf(x);
      if (got === nearest) return;
      notNearest++;
      if (!neighbours(x).includes(got)) wrong.push(`${x}: got ${got.toString(16)}, floatToHalf ${nearest.toString(16)}`);
    });
    expect(wrong).toEqual([]);
    expect(restIntact(result, d)).toBe(true);
    console.log(`f32 → f16 on this adapter: ${notNearest} of ${count} values not rounded to nearest even (allowed by WGSL)`);
  });

  it('scales in f32: f32 → f32 equals Math.fround(scale·x); f32 → f16 equals the cast of that product', async () => {
    const x = randomF32(1001, 9).map((v) => v * 40);
    const scale = Math.fround(0.18215); // the kernel multiplies by the f32 scale
    const src = buffer('f32', 2, 1001, 5, floatBytes(x));
    const to32: CastDispatch = { src, srcOffset: 2, dst: buffer('f32', 0, 1001, 6), dstOffset: 0, count: 1001, from: 'f32', to: 'f32', scale };
    const r32 = await run(to32);
    expect(Array.from(decode(r32.after, 'f32', 0, 1001))).toEqual(Array.from(x, (v) => Math.fround(scale * v)));
    expect(restIntact(r32, to32)).toBe(true);
    const to16: CastDispatch = { ...to32, dst: buffer('f16', 1, 1001, 8), dstOffset: 1, to: 'f16' };
    const r16 = await run(to16);
    const got = new DataView(r16.after.buffer);
    const off = x.map((v, i) => Math.abs(got.getUint16((1 + i) * 2, true) - floatToHalf(Math.fround(scale * v))));
    expect(Math.max(...off)).toBeLessThanOrEqual(1); // a neighbour (same sign: no products near 0 cross it here)
    expect(restIntact(r16, to16)).toBe(true);
  });

  for (const [srcOffset, dstOffset, count] of [[0, 1, 1], [1, 0, 2], [1, 1, 7], [0, 0, 1], [3, 2, 513], [1001, 777, 300]]) {
    it(`f16 → f16 copies bits (NaN as quiet NaN), src element ${srcOffset}, dst element ${dstOffset}, ${count} elements`, async () => {
      const halves = Array.from(randomBits(count, 10 + count), (b) => b & 0xffff);
      const d: CastDispatch = { src: buffer('f16', srcOffset, count, 11, halfBytes(halves)), srcOffset, dst: buffer('f16', dstOffset, count, 12), dstOffset, count, from: 'f16', to: 'f16' };
      const result = await run(d);
      const view = new DataView(result.after.buffer);
      const quiet = (h: number) => (Number.isNaN(halfToFloat(h)) ? (h & 0x8000) | 0x7e00 : h);
      expect(halves.map((_, i) => view.getUint16((dstOffset + i) * 2, true))).toEqual(halves.map(quiet));
      expect(restIntact(result, d)).toBe(true);
    });
  }

  it('names what is wrong with a bad cast', () => {
    const src = buffer('f32', 0, 8, 13);
    const dst = buffer('f16', 0, 8, 14); // 11 halves + filler → 24 bytes
    const good: CastDispatch = { src, srcOffset: 0, dst, dstOffset: 0, count: 8, from: 'f32', to: 'f16' };
    const pass = device.createCommandEncoder().beginComputePass();
    const bad = (patch: Partial<CastDispatch> | Record<string, unknown>) => () => kernels.encodeCast(pass, params, 0, { ...good, ...patch } as CastDispatch);
    expect(bad({ from: 'bf16' })).toThrow(/cast: from must be 'f32' or 'f16', got bf16/);
    expect(bad({ count: 0 })).toThrow(/count must be a positive integer, got 0/);
    expect(bad({ dstOffset: -1 })).toThrow(/dstOffset must be a non-negative integer/);
    expect(bad({ scale: Infinity })).toThrow(/non-finite scale/);
    expect(bad({ dst: src })).toThrow(/src and dst are one buffer/);
    expect(bad({ dstOffset: 5 })).toThrow(/dst is 24 bytes, needs at least 28 for 8 f16 at element 5/);
    expect(bad({ count: 12 })).toThrow(/src is 44 bytes, needs at least 48 for 12 f32 at element 0/);
    expect(() => kernels.encodeCast(pass, params, 4, good)).toThrow(/cast: parameter slot 4 outside \[0, 4\)/);
  });

  it('reported no uncaptured GPU errors', async () => {
    await device.queue.onSubmittedWorkDone();
    owned.splice(0).forEach((b) => b.destroy());
    expect(gpuErrors).toEqual([]);
  });
});

/** The binary16 bit patterns WGSL allows for x's conversion (see the header): the nearest-even one and its neighbour on
 * x's side, one magnitude step up or down (bits are sign | magnitude, so that is ±1 for both signs; ±0 steps to ±2⁻²⁴,
 * 65504 to Inf). */
function neighbours(x: number): number[] {
  const h = floatToHalf(x);
  const v = halfToFloat(h);
  if (Number.isNaN(x) || !Number.isFinite(x) || Math.abs(x) >= 65520 || v === x) return [h];
  if (v === 0) return [h, h | 1];
  return [h, Math.abs(x) > Math.abs(v) ? h + 1 : h - 1];
}

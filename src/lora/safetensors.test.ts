// Tests for the safetensors container and float16 codecs: round trips, hand-built files with known bit patterns
// (the byte layout of the safetensors README), and every hostile-input case with its specific message.
import { describe, expect, it } from 'vitest';
import { LoraError } from './errors.ts';
import { floatToHalf, halfToFloat } from './float16.ts';
import { readSafetensors, writeSafetensors } from './safetensors.ts';

/** A file from a header (object or raw JSON text) and a data section, with an optional forged header length. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), forgedLength?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  const view = new DataView(out.buffer);
  const n = forgedLength ?? json.length;
  view.setUint32(0, n % 2 ** 32, true);
  view.setUint32(4, Math.floor(n / 2 ** 32), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function bytesLE(kind: 'u16' | 'f32' | 'f64', values: number[]): Uint8Array {
  const size = kind === 'u16' ? 2 : kind === 'f32' ? 4 : 8;
  const out = new Uint8Array(values.length * size);
  const v = new DataView(out.buffer);
  values.forEach((x, i) => {
    if (kind === 'u16') v.setUint16(2 * i, x, true);
    else if (kind === 'f32') v.setFloat32(4 * i, x, true);
    else v.setFloat64(8 * i, x, true);
  });
  return out;
}

function errorOf(fn: () => unknown): LoraError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(LoraError);
    return e as LoraError;
  }
  throw new Error('expected a LoraError, nothing was thrown');
}

describe('float16', () => {
  it('encodes published IEEE 754 binary16 bit patterns', () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -14, 0x0400], [2 ** -24, 0x0001], [0.1, 0x2e66],
      [1 / 3, 0x3555], [0, 0x0000], [-0, 0x8000], [Infinity, 0x7c00], [65520, 0x7c00], [2 ** -26, 0x0000],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], // ties to even
      [3 * 2 ** -25, 0x0002], [2 ** -25, 0x0000], // subnormal ties to even
    ];
    for (const [v, h] of cases) expect([v, floatToHalf(v)]).toEqual([v, h]);
    expect(Number.isNaN(halfToFloat(floatToHalf(NaN)))).toBe(true);
  });

  it('decodes and re-encodes all 65536 bit patterns exactly (NaNs stay NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const f = halfToFloat(h);
      if (Number.isNaN(f)) expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true);
      else if (floatToHalf(f) !== h) throw new Error(`pattern ${h.toString(16)} -> ${f} -> ${floatToHalf(f).toString(16)}`);
    }
  });
});

describe('readSafetensors / writeSafetensors', () => {
  it('round-trips F32 exactly, with metadata, scalars and empty tensors, header padded to 8 bytes', () => {
    const a = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i) * 1e-3 * (i + 1));
    const tensors = new Map([
      ['unet.a.lora.down.weight', { shape: [4, 6], data: a }],
      ['alpha', { shape: [], data: [8] }],
      ['empty', { shape: [0, 3], data: new Float32Array(0) }],
    ]);
    const bytes = writeSafetensors(tensors, { format: 'pt', note: 'é 😀' });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    expect(n % 8).toBe(0);
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(0);
    const file = readSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt', note: 'é 😀' });
    expect([...file.tensors.keys()].sort()).toEqual(['alpha', 'empty', 'unet.a.lora.down.weight']);
    const t = file.tensors.get('unet.a.lora.down.weight')!;
    expect(t.dtype).toBe('F32');
    expect(t.shape).toEqual([4, 6]);
    expect(Array.from(t.data)).toEqual(Array.from(a));
    expect(file.tensors.get('alpha')!.shape).toEqual([]);
    expect(Array.from(file.tensors.get('alpha')!.data)).toEqual([8]);
    expect(file.tensors.get('empty')!.data.length).toBe(0);
  });

  it('writes F16 within half-precision rounding (|err| <= max(|x|·2^-11, 2^-25)) and refuses overflow', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 9) - 6));
    const file = readSafetensors(writeSafetensors({ w: { shape: [10, 100], data: x } }, undefined, { dtype: 'F16' }));
    const t = file.tensors.get('w')!;
    expect(t.dtype).toBe('F16');
    for (let i = 0; i < x.length; i++) {
      expect(Math.abs(t.data[i] - x[i])).toBeLessThanOrEqual(Math.max(Math.abs(x[i]) * 2 ** -11, 2 ** -25));
    }
    const e = errorOf(() => writeSafetensors({ big: { shape: [2], data: [1, 70000] } }, undefined, { dtype: 'F16' }));
    expect(e.message).toContain('"big": value 70000 at index 1 overflows float16');
  });

  it('orders larger dtypes first so F32 data stays 4-byte aligned when mixed with F16', () => {
    const bytes = writeSafetensors({ a16: { shape: [3], data: [1, 2, 3] }, z32: { shape: [1], data: [5], dtype: 'F32' } }, undefined, { dtype: 'F16' });
    const n = new DataView(bytes.buffer).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    expect(header.z32.data_offsets).toEqual([0, 4]);
    expect(header.a16.data_offsets).toEqual([4, 10]);
  });

  it('decodes hand-built F16 / BF16 / F64 / unaligned F32 tensors from known bit patterns', () => {
    const f16 = bytesLE('u16', [0x3c00, 0xc000, 0x7bff, 0x0001]);
    const bf16 = bytesLE('u16', [0x3f80, 0xc049, 0x0000]);
    const f64 = bytesLE('f64', [1 / 3, -1e-300]);
    const f32 = bytesLE('f32', [0.25, -7.5]);
    const data = new Uint8Array([...f16, ...bf16, ...f64, ...f32]);
    let o = 0;
    const at = (len: number) => [o, (o += len)];
    const header = {
      h: { dtype: 'F16', shape: [2, 2], data_offsets: at(8) },
      b: { dtype: 'BF16', shape: [3], data_offsets: at(6) },
      d: { dtype: 'F64', shape: [2], data_offsets: at(16) },
      f: { dtype: 'F32', shape: [2], data_offsets: at(8) }, // starts at data offset 30: not 4-byte aligned
    };
    const file = readSafetensors(craft(header, data));
    expect(Array.from(file.tensors.get('h')!.data)).toEqual([1, -2, 65504, 2 ** -24]);
    expect(Array.from(file.tensors.get('b')!.data)).toEqual([1, -3.140625, 0]);
    expect(Array.from(file.tensors.get('d')!.data)).toEqual([Math.fround(1 / 3), -0]);
    expect(Array.from(file.tensors.get('f')!.data)).toEqual([0.25, -7.5]);
    expect(file.tensors.get('b')!.dtype).toBe('BF16');
  });

  it('keeps a tensor named "__proto__" as an ordinary tensor', () => {
    const file = readSafetensors(writeSafetensors(new Map([['__proto__', { shape: [1], data: [3] }]])));
    expect([...file.tensors.keys()]).toEqual(['__proto__']);
    expect(Array.from(file.tensors.get('__proto__')!.data)).toEqual([3]);
  });

  it('accepts a null __metadata__ and keeps a "__proto__" metadata key as plain data', () => {
    const file = readSafetensors(craft('{"__metadata__":{"__proto__":"x","a":"b"}}'));
    expect(Object.keys(file.metadata).sort()).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(file.metadata)).toBe(Object.prototype);
    expect(readSafetensors(craft('{"__metadata__":null}')).metadata).toEqual({});
  });
});

describe('readSafetensors on hostile input', () => {
  const good = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = bytesLE('f32', [1, 2]);
  const cases: [string, () => Uint8Array, string][] = [
    ['file shorter than 8 bytes', () => new Uint8Array(5), 'file is 5 bytes, shorter than the 8-byte header length'],
    ['header length past the end', () => craft(good, eight, 1000), 'header length 1000 bytes runs past the end of the file'],
    ['absurd header length', () => craft(good, eight, 2 ** 40), `header length ${2 ** 40} bytes is absurdly large`],
    ['invalid UTF-8', () => { const b = craft('{"a":1}'); b[10] = 0xff; return b; }, 'is not valid UTF-8'],
    ['invalid JSON', () => craft('{"t": {"dtype": "F32",'), 'header is not valid JSON'],
    ['non-object header', () => craft('[1, 2]'), "header does not start with '{'"],
    ['unknown dtype', () => craft({ 'unet.x': { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8)),
      'tensor "unet.x": dtype "I64" is a safetensors dtype we do not support (supported: F32, F16, BF16, F64)'],
    ['made-up dtype', () => craft({ q: { dtype: 'Q4_K', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), 'tensor "q": dtype "Q4_K" is not a safetensors dtype'],
    ['shape product vs byte length', () => craft({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight),
      'tensor "t": shape [3] of F32 needs 12 bytes but data_offsets [0, 8] hold 8'],
    ['offsets past the end', () => craft({ t: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, eight),
      'tensor "t": data_offsets [4, 12] run past the end of the data section (8 bytes)'],
    ['overlapping offsets', () => craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight),
      'tensor "b": data_offsets [4, 8] overlap tensor "a" [0, 8]'],
    ['gap between tensors', () => craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F16', shape: [1], data_offsets: [6, 8] } }, eight),
      'gap of 2 bytes after tensor "a" [0, 4], before tensor "b" [6, 8]'],
    ['gap at start', () => craft({ b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, eight), 'gap of 4 bytes at the start of the data section, before tensor "b" [4, 8]'],
    ['trailing bytes', () => craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, eight), 'data section is 8 bytes but the tensors cover only 4'],
    ['negative dim', () => craft({ t: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, eight), 'tensor "t": shape[0] is number -2, expected a non-negative integer'],
    ['fractional dim', () => craft({ t: { dtype: 'F32', shape: [2, 1.5], data_offsets: [0, 8] } }, eight), 'tensor "t": shape[1] is number 1.5'],
    ['string dim', () => craft({ t: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, eight), 'tensor "t": shape[0] is the string "2"'],
    ['huge shape', () => craft({ t: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, eight), 'has too many elements'],
    ['offsets end before begin', () => craft({ t: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, eight), 'data_offsets [8, 0] end before begin'],
    ['offsets not a pair', () => craft({ t: { dtype: 'F32', shape: [2], data_offsets: [0] } }, eight), 'data_offsets is an array, expected [begin, end]'],
    ['negative offset', () => craft({ t: { dtype: 'F32', shape: [2], data_offsets: [-8, 0] } }, eight), 'data_offsets [-8, 0] must be non-negative integers'],
    ['entry not an object', () => craft({ t: 5 }), 'tensor "t": entry is number 5, expected { dtype, shape, data_offsets }'],
    ['metadata value not a string', () => craft({ __metadata__: { ss_network_dim: 8 } }), '__metadata__ value for key "ss_network_dim" is number 8, but metadata values must be strings'],
    ['metadata not an object', () => craft({ __metadata__: 'x' }), '__metadata__ is the string "x", expected an object of strings'],
  ];
  for (const [name, make, message] of cases) {
    it(`rejects ${name}`, () => {
      const e = errorOf(() => readSafetensors(make()));
      expect(e.code).toBe('safetensors');
      expect(e.message).toContain(message);
    });
  }

  it('truncation and byte corruption of a valid file only ever give LoraError (300 mutants)', () => {
    const valid = writeSafetensors({ a: { shape: [3, 4], data: new Float32Array(12).fill(0.5) }, b: { shape: [2], data: [1, 2] } }, { k: 'v' }, { dtype: 'F16' });
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    let rejected = 0;
    for (let i = 0; i < 300; i++) {
      let b = valid.slice();
      if (i % 3 === 0) b = b.slice(0, rand(b.length));
      else for (let j = 0; j <= i % 4; j++) b[rand(b.length)] = rand(256);
      try {
        readSafetensors(b);
      } catch (e) {
        expect(e).toBeInstanceOf(LoraError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(100);
  });
});

// The strict Snappy decoder: hand-encoded streams (format_description.txt) decode exactly, overlapping copies
// included; hostile streams are refused at once. Real pyarrow-written pages are decoded in pair-sources.test.ts
// (fixtures/pair-sources/pickapic.parquet), and the two pages on which hyparquet's own decoder looped for seconds
// are replayed from src/fuzz/corpus/pair-parquet by fuzz.test.ts.
import { describe, expect, it } from 'vitest';
import { snappyDecode, SnappyError } from './snappy.ts';

const bytes = (...b: number[]) => Uint8Array.from(b);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

describe('snappyDecode', () => {
  it('decodes literals, 1-, 2- and 4-byte-offset copies, overlapping ones byte by byte', () => {
    // "abc" literal (tag (3-1)<<2), then copy1 of 7 bytes at offset 3 (tag ((7-4)<<2)|1) → "abcabcabca"
    expect(new TextDecoder().decode(snappyDecode(bytes(10, 2 << 2, ...ascii('abc'), (3 << 2) | 1, 3), 10, 1 << 20))).toBe('abcabcabca');
    // "xy", copy2 of 4 at offset 2 ((4-1)<<2|2), copy4 of 2 at offset 6 ((2-1)<<2|3) → "xyxyxy" + "xy"
    expect(new TextDecoder().decode(snappyDecode(bytes(8, 1 << 2, ...ascii('xy'), (3 << 2) | 2, 2, 0, (1 << 2) | 3, 6, 0, 0, 0), 8, 1 << 20))).toBe('xyxyxyxy');
    // a 61-byte literal needs the one-byte length form (tag 60<<2, then length − 1)
    const long = Array.from({ length: 61 }, (_, i) => i);
    expect([...snappyDecode(bytes(61, 60 << 2, 60, ...long), 61, 1 << 20)]).toEqual(long);
  });

  it('refuses hostile streams with a SnappyError, without reading or writing out of bounds', () => {
    const refuse = (input: Uint8Array, length: number, message: RegExp) => expect(() => snappyDecode(input, length, 1 << 20)).toThrow(message);
    // a 4-byte literal length of 2^32 (hyparquet read it as −1 and stepped backwards)
    refuse(bytes(4, 63 << 2, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4), 4, /literal runs past/);
    refuse(bytes(4, 3 << 2, 1, 2, 3, 4, (3 << 2) | 1, 9), 4, /runs past the output|reaches 9 bytes back/);
    refuse(bytes(8, 0, 7, (3 << 2) | 1, 5), 8, /reaches 5 bytes back from byte 1/);
    refuse(bytes(5, 3 << 2, 1, 2, 3, 4), 4, /holds 5 bytes, the page header says 4/);
    refuse(bytes(4, 2 << 2, 1, 2, 3), 4, /ends after 3 of 4 bytes/);
    expect(() => snappyDecode(bytes(0x80, 0x80, 0x80, 0x80, 0x10), 2 ** 32, 256 << 20)).toThrow(SnappyError);
  });
});

// Incremental SHA-256 against node:crypto (OpenSSL) and WebCrypto: message lengths around every padding edge
// (55/56/63/64 bytes, where the length field spills into a second block), and random messages fed in random pieces.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createRandom } from '../train/random.ts';
import { createSha256 } from './sha256.ts';

const reference = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function randomBytes(seed: number, length: number): Uint8Array {
  const r = createRandom(seed);
  return Uint8Array.from({ length }, () => r.int(256));
}

/** The digest with the message fed in pieces cut at `cuts`. */
function piecewise(bytes: Uint8Array, cuts: number[]): string {
  const hash = createSha256();
  let start = 0;
  for (const cut of [...cuts, bytes.byteLength]) {
    hash.update(bytes.subarray(start, cut));
    start = cut;
  }
  return hash.hex();
}

describe('sha256', () => {
  it('matches the FIPS 180-2 examples ("abc", the empty message, a million "a"s)', () => {
    const utf8 = (s: string) => new TextEncoder().encode(s);
    expect(piecewise(utf8('abc'), [])).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(piecewise(new Uint8Array(0), [])).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(piecewise(new Uint8Array(1_000_000).fill(0x61), [1, 63, 500_001])).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('matches node:crypto for every length from 0 to 300 bytes (all padding cases), fed whole', () => {
    const bytes = randomBytes(1, 300);
    for (let length = 0; length <= 300; length++) expect(piecewise(bytes.subarray(0, length), []), `length ${length}`).toBe(reference(bytes.subarray(0, length)));
  });

  it('matches node:crypto on random messages of many sizes split at random points', () => {
    const r = createRandom(7);
    for (let trial = 0; trial < 200; trial++) {
      const length = trial < 100 ? r.int(1000) : r.int(300_000);
      const bytes = randomBytes(100 + trial, length);
      const cuts = Array.from({ length: r.int(12) }, () => r.int(length + 1)).sort((a, b) => a - b);
      expect(piecewise(bytes, cuts), `trial ${trial}: ${length} bytes cut at ${cuts}`).toBe(reference(bytes));
    }
  });

  it('hashes a view at an odd offset of a larger buffer, byte by byte too, as WebCrypto does', async () => {
    const bytes = randomBytes(3, 1001).subarray(3, 998);
    const web = Buffer.from(await crypto.subtle.digest('SHA-256', bytes.slice())).toString('hex');
    expect(piecewise(bytes, [])).toBe(web);
    expect(piecewise(bytes, Array.from({ length: bytes.byteLength }, (_, i) => i))).toBe(web);
  });

  it('refuses bytes after the digest was taken', () => {
    const hash = createSha256();
    hash.hex();
    expect(() => hash.update(new Uint8Array(1))).toThrow(/after hex/);
  });
});

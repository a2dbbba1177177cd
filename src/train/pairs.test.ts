// pairs.json parsing: round trips through both encodings, byte → [-1, 1] mapping (diffusers' normalize), and one
// clear error per kind of bad input, naming the pair and what was wrong.
import { describe, expect, it } from 'vitest';
import { tokenize } from '../embedded/tokenizer.ts';
import { encodePairs, parsePairs, type PairsFile, type PreferencePair } from './pairs.ts';

const W = 4;
const H = 2;
const opts = { width: W, height: H, checkPrompt: (p: string) => void tokenize(p, 16) };
const image = (f: (i: number) => number) => Float32Array.from({ length: 3 * W * H }, (_, i) => f(i));
const pair: PreferencePair = { prompt: 'a red square', winner: image((i) => (i % 7) / 3 - 1), loser: image((i) => -((i % 5) / 2.5) + 0.5) };
const file = (): PairsFile => encodePairs([pair, { ...pair, prompt: 'a blue circle' }], W, H);
const parse = (f: unknown) => parsePairs(JSON.stringify(f), opts);

describe('pairs.json', () => {
  it('float32-chw round-trips exactly; rgb8 to within half a byte step; "preferred": "b" swaps', () => {
    const exact = parse(encodePairs([pair], W, H, 'float32-chw'))[0];
    expect(exact.winner).toEqual(pair.winner);
    expect(exact.loser).toEqual(pair.loser);
    const bytes = parse(file());
    expect(bytes).toHaveLength(2);
    expect(Math.max(...bytes[0].winner.map((v, i) => Math.abs(v - pair.winner[i])))).toBeLessThanOrEqual(0.5 / 127.5 + 1e-6);
    const swapped = file();
    swapped.pairs[0].preferred = 'b';
    expect(parse(swapped)[0].winner).toEqual(bytes[0].loser);
  });

  it('carries a pair\'s "source" (original size and crop) through encode and parse, swapped pairs included', () => {
    const source = { width: 1024, height: 768, cropTop: 0, cropLeft: 171 };
    const f = encodePairs([{ ...pair, source }, pair], W, H);
    expect(f.pairs[0].source).toEqual(source);
    expect('source' in f.pairs[1]).toBe(false);
    f.pairs[0].preferred = 'b';
    const [withSource, without] = parse(f);
    expect(withSource.source).toEqual(source);
    expect(without.source).toBeUndefined();
  });

  it('maps rgba8 bytes as v = b/127.5 − 1, planar, alpha ignored', () => {
    const rgba = new Uint8Array(W * H * 4).map((_, i) => (i % 4 === 3 ? 7 : i * 9));
    const f = file();
    f.pairs[0].a = { encoding: 'rgba8', data: btoa(String.fromCharCode(...rgba)) };
    const got = parse(f)[0].winner;
    expect(got[0]).toBeCloseTo(0 / 127.5 - 1, 6); // R of pixel 0
    expect(got[W * H + 1]).toBeCloseTo((5 * 9) / 127.5 - 1, 6); // G of pixel 1 = byte 5
    expect(got[2 * W * H + 2]).toBeCloseTo((10 * 9) / 127.5 - 1, 6); // B of pixel 2 = byte 10
  });

  it('gives clear errors', () => {
    const bad = (edit: (f: PairsFile & Record<string, unknown>) => void) => {
      const f = file() as PairsFile & Record<string, unknown>;
      edit(f);
      return () => parse(f);
    };
    expect(() => parsePairs('{oops', opts)).toThrow(/not JSON/);
    expect(bad((f) => ((f as { version: number }).version = 2))).toThrow(/"version" must be 1, got 2/);
    expect(bad((f) => (f.width = 8))).toThrow(/8×2 images; the model works at 4×2/);
    expect(bad((f) => (f.pairs = []))).toThrow(/non-empty array/);
    expect(bad((f) => delete (f.pairs[1] as Partial<PairsFile['pairs'][0]>).b)).toThrow(/pair 1: missing field "b"/);
    expect(bad((f) => ((f.pairs[0] as { preferred: string }).preferred = 'left'))).toThrow(/pair 0: "preferred" must be "a" or "b", got "left"/);
    expect(bad((f) => (f.pairs[1].prompt = 'a red dragon'))).toThrow(/pair 1: the model cannot read the prompt "a red dragon".*"dragon"/);
    expect(bad((f) => (f.pairs[1].a = { ...f.pairs[1].a, width: 8, height: 4 }))).toThrow(/pair 1, image a: the image is 8×4; the model works at 4×2/);
    expect(bad((f) => (f.pairs[0].b.data = btoa('x'.repeat(4 * 4 * 3))))).toThrow(/pair 0, image b: rgb8 at 4×2 needs 24 bytes, got 48 \(a 4×4 image\?\)/);
    expect(bad((f) => ((f.pairs[0].a as { encoding: string }).encoding = 'png'))).toThrow(/pair 0, image a: unknown "encoding" "png"/);
    expect(bad((f) => (f.pairs[0].a.data = '@@@'))).toThrow(/not valid base64/);
    const sourced = (source: unknown) => bad((f) => ((f.pairs[1] as Record<string, unknown>).source = source));
    expect(sourced([1, 2])).toThrow(/pair 1, "source": must be an object \{ "width", "height", "cropTop", "cropLeft" \}/);
    expect(sourced({ width: 0, height: 8, cropTop: 0, cropLeft: 0 })).toThrow(/pair 1, "source": "width" must be an integer from 1 to 65536, got 0/);
    expect(sourced({ width: 8, height: 8, cropTop: -1, cropLeft: 0 })).toThrow(/"cropTop" must be an integer from 0 to 65536, got -1/);
    expect(sourced({ width: 8, height: 8, cropTop: 0, cropLeft: 1.5 })).toThrow(/"cropLeft" must be an integer/);
    expect(sourced({ width: 8, height: 1e9, cropTop: 0, cropLeft: 0 })).toThrow(/"height" must be an integer from 1 to 65536, got 1000000000/);
    const nan = encodePairs([{ ...pair, loser: image((i) => (i === 5 ? NaN : 0)) }], W, H, 'float32-chw');
    expect(() => parse(nan)).toThrow(/pair 0, image b: value 5 \(channel 0, pixel 5\) is NaN/);
  });
});

// The embedded world: grammar round trip, rasteriser against exact areas and hand-computed pixels, the held-out split.
import { describe, expect, it } from 'vitest';
import { tokenize } from '../embedded/tokenizer.ts';
import {
  CaptionError, captionOf, coverage, createRng, encodePng, heldOutCaptions, isHeldOut, layoutScene, parseCaption, renderScene,
  sampleExample, sampleSpec, type Scene,
} from './index.ts';
import { inflateSync } from 'node:zlib';

const one = (shape: Scene['objects'][number]['shape'], cx = 16, cy = 16, r = 8): Scene => ({ background: [0, 0, 0], objects: [{ shape, rgb: [1, 1, 1], cx, cy, r }] });
const area = (scene: Scene) => coverage(scene)[0].reduce((a, b) => a + b, 0);

describe('caption grammar', () => {
  it('round-trips captions → spec → caption for 500 sampled specs, and every caption tokenizes', () => {
    const rng = createRng(5);
    for (let i = 0; i < 500; i++) {
      const spec = sampleSpec(rng);
      const caption = captionOf(spec);
      expect(parseCaption(caption)).toEqual(spec);
      expect(() => tokenize(caption, 16)).not.toThrow();
    }
  });

  it('parses the example of the issue', () => {
    expect(parseCaption('a small red circle above a large blue square on a yellow background')).toEqual({
      objects: [{ size: 'small', colour: 'red', shape: 'circle' }, { size: 'large', colour: 'blue', shape: 'square' }],
      relation: 'above', background: 'yellow',
    });
    expect(parseCaption('a large green star left of a small white diamond').relation).toBe('left of');
    expect(parseCaption('a small red circle at the top').position).toBe('top');
  });

  it('refuses captions outside the grammar, naming the word', () => {
    expect(() => parseCaption('a small red hexagon')).toThrow(/a shape .* found "hexagon" \(word 4\)/);
    expect(() => parseCaption('a small red circle at the')).toThrow(/at the end/);
    expect(() => parseCaption('a small red circle on a red background')).toThrow(CaptionError);
    expect(() => parseCaption('a small red circle above')).toThrow(/expected "a" at the end/);
  });
});

describe('rasteriser', () => {
  it('gives shape areas within 2 % of the exact areas (r = 8 px)', () => {
    const r = 8;
    expect(area(one('circle'))).toBeCloseTo(Math.PI * (0.95 * r) ** 2, -1);
    expect(Math.abs(area(one('circle')) / (Math.PI * (0.95 * r) ** 2) - 1)).toBeLessThan(0.02);
    expect(Math.abs(area(one('square')) / (1.7 * r) ** 2 - 1)).toBeLessThan(0.02);
    expect(Math.abs(area(one('diamond')) / (2 * (1.05 * r) ** 2) - 1)).toBeLessThan(0.02);
    expect(Math.abs(area(one('triangle')) / (0.5 * 2 * 1.8 * r * r) - 1)).toBeLessThan(0.02);
  });

  it('anti-aliases: a pixel-aligned square edge is fully covered, a half-pixel edge is half covered', () => {
    // square half-side 0.85·r; r = 10/0.85 → side from 6 to 26 exactly (pixel-aligned), centre 16.
    const aligned = coverage(one('square', 16, 16, 10 / 0.85))[0];
    expect(aligned[16 * 32 + 6]).toBe(1);
    expect(aligned[16 * 32 + 5]).toBe(0);
    const half = coverage(one('square', 16.5, 16, 10 / 0.85))[0];
    expect(half[16 * 32 + 6]).toBe(0.5);
    expect(half[16 * 32 + 26]).toBe(0.5);
  });

  it('renders CHW in [-1, 1]: background, object colour at the centre, blend on the edge', () => {
    const scene: Scene = { background: [0, 0.5, 1], objects: [{ shape: 'square', rgb: [1, 0, 0], cx: 16.5, cy: 16, r: 10 / 0.85 }] };
    const img = renderScene(scene);
    const px = (c: number, y: number, x: number) => img[c * 1024 + y * 32 + x];
    expect([px(0, 0, 0), px(1, 0, 0), px(2, 0, 0)]).toEqual([-1, 0, 1]);
    expect([px(0, 16, 16), px(1, 16, 16), px(2, 16, 16)]).toEqual([1, -1, -1]);
    expect(px(0, 16, 6)).toBeCloseTo(0, 6); // half red over 0 → 0.5 → 0 in [-1, 1]
  });

  it('places objects where the caption says', () => {
    const above = layoutScene(parseCaption('a small red circle above a large blue square'));
    expect(above.objects[0].cy).toBeLessThan(above.objects[1].cy - 10);
    const right = layoutScene(parseCaption('a small red circle at the right'));
    expect(right.objects[0].cx).toBeGreaterThan(20);
  });
});

describe('sampler and split', () => {
  it('is deterministic by seed and never yields a held-out caption in the training split', () => {
    const a = createRng(3), b = createRng(3);
    for (let i = 0; i < 100; i++) {
      const x = sampleExample(a), y = sampleExample(b);
      expect(x.caption).toBe(y.caption);
      expect(x.image).toEqual(y.image);
      expect(isHeldOut(x.caption)).toBe(false);
    }
  });

  it('gives 60 distinct held-out captions, the same every time', () => {
    const list = heldOutCaptions(60);
    expect(new Set(list).size).toBe(60);
    expect(list.every(isHeldOut)).toBe(true);
    expect(heldOutCaptions(60)).toEqual(list);
  });
});

describe('PNG encoder', () => {
  it('writes a valid PNG whose pixels decode back', () => {
    const img = new Float32Array(3 * 2 * 2).fill(-1);
    img[0] = 1; // red at (0, 0)
    const png = encodePng(img, 2, 2);
    expect([...png.slice(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const idatLength = new DataView(png.buffer).getUint32(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLength));
    expect([...raw]).toEqual([0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

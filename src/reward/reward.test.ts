// The procedural reward on hand-made images: the right rendering beats each kind of defect on the axis it concerns.
import { describe, expect, it } from 'vitest';
import { captionOf, createRng, layoutScene, parseCaption, renderScene, sampleExample, RGB, COLOURS, type Example, type Scene } from '../world/index.ts';
import { scoreImage, winRate } from './index.ts';

function boxBlur(img: Float32Array, size = 32): Float32Array {
  const out = img.slice();
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let s = 0, n = 0;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy, xx = x + dx;
            if (yy >= 0 && xx >= 0 && yy < size && xx < size) (s += img[c * size * size + yy * size + xx]), n++;
          }
        }
        out[c * size * size + y * size + x] = s / n;
      }
    }
  }
  return out;
}

const examples: Example[] = (() => {
  const rng = createRng(11);
  return Array.from({ length: 16 }, () => sampleExample(rng));
})();

describe('procedural reward', () => {
  it('scores correct crisp renders high on every axis', () => {
    for (const e of examples) {
      const s = scoreImage(e.image, e.caption);
      expect(s.total).toBeGreaterThan(0.83);
      expect(Math.min(s.fidelity, s.colour, s.composition)).toBeGreaterThan(0.75);
    }
  });

  it('prefers a crisp image to the same image blurred (total and detail)', () => {
    for (const e of examples) {
      const crisp = scoreImage(e.image, e.caption), blurred = scoreImage(boxBlur(e.image), e.caption);
      expect(crisp.detail).toBeGreaterThan(blurred.detail + 0.1);
      expect(crisp.total).toBeGreaterThan(blurred.total);
    }
  });

  it('prefers a clean image to the same image with speckle noise (total and detail)', () => {
    const rng = createRng(3);
    for (const e of examples) {
      const noisy = e.image.map((v) => (rng() < 0.1 ? Math.max(-1, Math.min(1, v + (rng() - 0.5) * 1.2)) : v));
      const clean = scoreImage(e.image, e.caption), speckled = scoreImage(noisy, e.caption);
      expect(clean.detail).toBeGreaterThan(speckled.detail + 0.05);
      expect(clean.total).toBeGreaterThan(speckled.total);
    }
  });

  it('penalises a wrong object colour (fidelity and total)', () => {
    for (const e of examples) {
      const wrong = COLOURS.find((c) => c !== e.spec.objects[0].colour && c !== e.spec.background && c !== (e.spec.background ? undefined : 'white'))!;
      const scene: Scene = { ...e.scene, objects: e.scene.objects.map((o, k) => (k === 0 ? { ...o, rgb: RGB[wrong] } : o)) };
      const right = scoreImage(e.image, e.caption), recoloured = scoreImage(renderScene(scene), e.caption);
      expect(right.fidelity).toBeGreaterThan(recoloured.fidelity + 0.15);
      expect(right.total).toBeGreaterThan(recoloured.total + 0.05);
    }
  });

  it('penalises misplaced objects: a swapped pair, a single object at the opposite side', () => {
    const cases = ['a small red circle above a large blue square', 'a large green star left of a small white diamond on a gray background', 'a small yellow triangle at the top on a blue background'];
    const moved = ['a small red circle below a large blue square', 'a large green star right of a small white diamond on a gray background', 'a small yellow triangle at the bottom on a blue background'];
    cases.forEach((caption, i) => {
      const right = scoreImage(renderScene(layoutScene(parseCaption(caption))), caption);
      const wrong = scoreImage(renderScene(layoutScene(parseCaption(moved[i]))), caption);
      expect(right.fidelity).toBeGreaterThan(wrong.fidelity + 0.2);
      expect(right.total).toBeGreaterThan(wrong.total);
    });
  });

  it('penalises a wrong shape and a wrong size (fidelity)', () => {
    const caption = 'a large red circle in the center';
    const right = scoreImage(renderScene(layoutScene(parseCaption(caption))), caption).fidelity;
    for (const other of ['a large red square in the center', 'a large red star in the center', 'a small red circle in the center']) {
      expect(right).toBeGreaterThan(scoreImage(renderScene(layoutScene(parseCaption(other))), caption).fidelity + 0.1);
    }
  });

  it('scores an empty background or pure noise low', () => {
    const caption = captionOf(examples[0].spec);
    const bg = RGB[examples[0].spec.background ?? 'black'];
    const empty = new Float32Array(3 * 1024).map((_, i) => bg[Math.floor(i / 1024)] * 2 - 1);
    const rng = createRng(1);
    const noise = new Float32Array(3 * 1024).map(() => rng() * 2 - 1);
    expect(scoreImage(empty, caption).total).toBeLessThan(0.5);
    expect(scoreImage(noise, caption).total).toBeLessThan(0.5);
  });

  it('rejects captions outside the grammar and images of the wrong size', () => {
    expect(() => scoreImage(examples[0].image, 'a red hexagon')).toThrow(/size/);
    expect(() => scoreImage(new Float32Array(10), examples[0].caption)).toThrow(/\[3, S, S\]/);
  });
});

describe('winRate', () => {
  it('counts wins, half ties, and refuses unequal lists', () => {
    expect(winRate([1, 2, 3, 4], [0, 2, 5, 1])).toBeCloseTo((1 + 0.5 + 0 + 1) / 4, 12);
    expect(() => winRate([1], [1, 2])).toThrow(RangeError);
  });
});

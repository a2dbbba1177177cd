// The procedural reward on hand-made images: the right rendering beats each kind of defect on the axis it concerns.
import { describe, expect, it } from 'vitest';
import { captionOf, createRng, layoutScene, parseCaption, renderScene, sampleExample, sampleSpec, RGB, COLOURS, type Example, type Rgb, type Scene } from '../world/index.ts';
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

  it('rejects captions outside the grammar and images of the wrong size', () => {
    expect(() => scoreImage(examples[0].image, 'a red hexagon')).toThrow(/size/);
    expect(() => scoreImage(new Float32Array(10), examples[0].caption)).toThrow(/\[3, S, S\]/);
  });
});

// Issue 12: no component may be gamed by an image that is not a picture of the prompt. For each prompt, images that
// are not pictures of it (noise, blank, flat fills, the clean render's pixels shuffled, renders of other captions)
// must score below *every* clean render of it (nominal and jittered layouts), on each component where that makes
// sense. Detail asks whether edges are crisp, not what they outline, so a crisp render of another scene is exempt there.
describe('images that are not a picture of the prompt', () => {
  const AXES = ['total', 'fidelity', 'detail', 'colour', 'composition'] as const;
  const flat = (c: Rgb) => new Float32Array(3 * 1024).map((_, i) => c[Math.floor(i / 1024)] * 2 - 1);
  const shuffle = (img: Float32Array, rng: () => number) => {
    const perm = Array.from({ length: 1024 }, (_, i) => i);
    for (let i = 1023; i > 0; i--) {
      const k = Math.floor(rng() * (i + 1));
      [perm[i], perm[k]] = [perm[k], perm[i]];
    }
    return img.map((_, j) => img[(j - (j % 1024)) + perm[j % 1024]]);
  };
  const prompts = (() => {
    const rng = createRng(12);
    return Array.from({ length: 24 }, () => sampleExample(rng));
  })();
  const fakes = (e: Example, rng: () => number): Record<string, Float32Array[]> => ({
    noise: [new Float32Array(3 * 1024).map(() => rng() * 2 - 1), new Float32Array(3 * 1024).map(() => Math.max(-1, Math.min(1, (rng() + rng() + rng() - 1.5) * 0.6)))],
    blank: [flat(RGB[e.spec.background ?? 'black']), flat([0, 0, 0]), flat([1, 1, 1])],
    constant: [...COLOURS.map((c) => flat(RGB[c])), flat([0.5, 0.5, 0.5])],
    shuffled: [shuffle(renderScene(layoutScene(e.spec)), rng), shuffle(renderScene(layoutScene(e.spec, rng)), rng)],
    'wrong scene': Array.from({ length: 4 }, () => {
      for (;;) {
        const spec = sampleSpec(rng);
        if (captionOf(spec) !== e.caption) return Object.assign(renderScene(layoutScene(spec, rng)), { caption: captionOf(spec) });
      }
    }),
  });

  it('score below every clean render of the prompt, in total and on every component where that makes sense', () => {
    const failures: string[] = [];
    const margins: Record<string, number> = {};
    prompts.forEach((e, p) => {
      const rng = createRng(100 + p);
      const clean = [renderScene(layoutScene(e.spec)), ...Array.from({ length: 5 }, () => renderScene(layoutScene(e.spec, rng)))].map((img) => scoreImage(img, e.caption));
      for (const [kind, images] of Object.entries(fakes(e, rng))) {
        for (const img of images) {
          const s = scoreImage(img, e.caption);
          for (const axis of AXES) {
            if (kind === 'wrong scene' && axis === 'detail') continue;
            const margin = Math.min(...clean.map((c) => c[axis])) - s[axis];
            margins[`${kind} ${axis}`] = Math.min(margins[`${kind} ${axis}`] ?? Infinity, margin);
            // A scene that shares the prompt's palette or layout may come close on colour or composition; fakes may not.
            if (margin < (kind === 'wrong scene' ? 0.02 : 0.1)) failures.push(`${kind} ${(img as { caption?: string }).caption ?? ""} on "${e.caption}": ${axis} ${s[axis].toFixed(3)} vs clean min ${(s[axis] + margin).toFixed(3)}`);
          }
        }
      }
    });
    expect(failures).toEqual([]);
    // The fidelity and total margins are wide, not just positive: a fake explains at most a sliver of the prompt.
    for (const kind of ['noise', 'blank', 'constant', 'shuffled']) expect(margins[`${kind} fidelity`]).toBeGreaterThan(0.8);
    for (const kind of ['noise', 'blank', 'constant', 'shuffled']) expect(margins[`${kind} total`]).toBeGreaterThan(0.6);
    expect(margins['wrong scene fidelity']).toBeGreaterThan(0.4);
  });

  it('gives noise, blank and flat images near-zero fidelity (the issue-5 reward gave uniform noise 0.81)', () => {
    for (const e of prompts.slice(0, 8)) {
      const rng = createRng(7);
      const f = fakes(e, rng);
      for (const img of [...f.noise, ...f.blank, ...f.constant, ...f.shuffled]) expect(scoreImage(img, e.caption).fidelity).toBeLessThan(0.1);
    }
  });
});

describe('winRate', () => {
  it('counts wins, half ties, and refuses unequal lists', () => {
    expect(winRate([1, 2, 3, 4], [0, 2, 5, 1])).toBeCloseTo((1 + 0.5 + 0 + 1) / 4, 12);
    expect(() => winRate([1], [1, 2])).toThrow(RangeError);
  });
});

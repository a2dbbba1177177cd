// Seeded sampler of (caption, scene) pairs and the held-out split. A caption is held out (evaluation only, never seen
// in training) when the FNV-1a hash of its text is ≡ 0 mod 10: a fixed rule on the caption itself, so the training
// loop, the preference-pair builder and `npm run reproduce` agree on it without sharing any list.
import { captionOf, type ObjectSpec, type SceneSpec } from './caption.ts';
import { fnv1a, pick, createRng, type Rng } from './random.ts';
import { layoutScene, type Scene } from './scene.ts';
import { renderScene } from './render.ts';
import { BACKGROUNDS, COLOURS, POSITIONS, RELATIONS, SHAPES, SIZES } from './vocabulary.ts';

export const HELD_OUT_MODULUS = 10;
export type Split = 'train' | 'heldout';

export function isHeldOut(caption: string): boolean {
  return fnv1a(caption) % HELD_OUT_MODULUS === 0;
}

const object = (rng: Rng): ObjectSpec => ({ size: pick(rng, SIZES), colour: pick(rng, COLOURS), shape: pick(rng, SHAPES) });

/** A random SceneSpec: one object (40 %) or two (60 %); position said 80 % of the time, background 70 %. */
export function sampleSpec(rng: Rng): SceneSpec {
  const first = object(rng);
  let spec: SceneSpec;
  if (rng() < 0.4) {
    spec = { objects: [first], position: rng() < 0.8 ? pick(rng, POSITIONS) : undefined };
  } else {
    let second = object(rng);
    while (second.colour === first.colour && second.shape === first.shape) second = object(rng);
    spec = { objects: [first, second], relation: pick(rng, RELATIONS) };
  }
  if (rng() < 0.7) {
    const allowed = BACKGROUNDS.filter((b) => spec.objects.every((o) => o.colour !== b));
    spec.background = pick(rng, allowed);
  }
  return spec;
}

export interface Example { caption: string; spec: SceneSpec; scene: Scene; image: Float32Array }

/** The next example of the given split from `rng` (specs of the other split are skipped). */
export function sampleExample(rng: Rng, split: Split = 'train'): Example {
  for (;;) {
    const spec = sampleSpec(rng);
    const caption = captionOf(spec);
    if (isHeldOut(caption) !== (split === 'heldout')) continue;
    const scene = layoutScene(spec, rng);
    return { caption, spec, scene, image: renderScene(scene) };
  }
}

/** `count` distinct held-out captions, the same for a given seed everywhere (evaluation prompts). */
export function heldOutCaptions(count: number, seed = 2024): string[] {
  const rng = createRng(seed);
  const out = new Set<string>();
  while (out.size < count) {
    const caption = captionOf(sampleSpec(rng));
    if (isHeldOut(caption)) out.add(caption);
  }
  return [...out];
}

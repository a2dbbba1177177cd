// Looks at the base model: samples a grid of prompts × seeds with the page's own engine (onnxruntime-node), writes a
// PNG (each row: one prompt, its seeds, then the world's own rendering of it for reference) and prints the procedural
// reward per axis, for the samples and for the references.
// Usage: npm run sample:base -- [--models models] [--out tmp/base-grid.png] [--prompts 8] [--seeds 4]
//          [--steps 20] [--omega 4] [--split heldout|train] [--scheduler ddim]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseManifest } from '../model/manifest.ts';
import { createModelEngine } from '../pipelines/index.ts';
import { createRng, encodePng, heldOutCaptions, imageGrid, layoutScene, parseCaption, renderScene, sampleExample } from '../world/index.ts';
import { scoreImage, type RewardScores } from '../reward/index.ts';
import { memorySource } from '../model/source/memory.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const AXES = ['total', 'fidelity', 'detail', 'colour', 'composition'] as const;
const summary = (scores: RewardScores[]) => AXES.map((a) => `${a} ${(scores.reduce((s, r) => s + r[a], 0) / scores.length).toFixed(3)}`).join('  ');

async function main() {
  const dir = arg('models', 'models');
  const out = arg('out', 'tmp/base-grid.png');
  const [nPrompts, nSeeds, steps, omega] = ['prompts', 'seeds', 'steps', 'omega'].map((k, i) => Number(arg(k, ['8', '4', '20', '4'][i])));
  const split = arg('split', 'heldout');
  const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))]));
  const engine = await createModelEngine(ort, memorySource({ ...manifest, loras: {} }, files));
  const rng = createRng(77);
  const prompts = split === 'heldout' ? heldOutCaptions(nPrompts) : Array.from({ length: nPrompts }, () => sampleExample(rng).caption);
  const images: Float32Array[] = [];
  const sampled: RewardScores[] = [], references: RewardScores[] = [];
  const started = performance.now();
  for (const prompt of prompts) {
    for (let s = 0; s < nSeeds; s++) {
      const r = await engine.generate({ ...manifest.defaults, prompt, negativePrompt: '', seed: 1000 + s, steps, omega, alpha: 1, beta: 0, scheduler: arg('scheduler', 'ddim') }, ['baseline'], {});
      const img = r.images.get('baseline')!;
      images.push(img);
      sampled.push(scoreImage(img, prompt));
    }
    const reference = renderScene(layoutScene(parseCaption(prompt)));
    images.push(reference);
    references.push(scoreImage(reference, prompt));
    console.log(`${prompt}: ${sampled.slice(-nSeeds).map((x) => x.total.toFixed(2)).join(' ')}`);
  }
  const grid = imageGrid(images, 32, nSeeds + 1, 3);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, encodePng(grid.image, grid.width, grid.height));
  console.log(`${prompts.length} ${split} prompts × ${nSeeds} seeds, ${steps} steps, ω ${omega}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(`samples:    ${summary(sampled)}`);
  console.log(`references: ${summary(references)}`);
  console.log(`grid: ${out}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});

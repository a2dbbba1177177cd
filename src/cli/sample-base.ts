// Looks at the base model: samples a grid of prompts × seeds with the page's own engine (onnxruntime-node), writes a
// PNG (each row: one prompt, its seeds for each model, then the world's own rendering of it for reference) and prints
// the procedural reward per axis with 95 % bootstrap intervals over prompts (src/eval/bootstrap.ts), for the samples
// and for the references. Given several model directories (--models a,b), it samples each on the same prompts and
// seeds and prints every later model's paired difference from the first: the comparison a new base model needs.
// Usage: npm run sample:base -- [--models models[,other]] [--out tmp/base-grid.png] [--prompts 8] [--seeds 4]
//          [--steps 20] [--omega 4] [--split heldout|train] [--scheduler ddim]
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseManifest } from '../model/manifest.ts';
import { createModelEngine } from '../pipelines/index.ts';
import { createRng, encodePng, heldOutCaptions, imageGrid, layoutScene, parseCaption, renderScene, sampleExample } from '../world/index.ts';
import { scoreImage, type RewardScores } from '../reward/index.ts';
import { memorySource } from '../model/source/memory.ts';
import { bootstrapInterval, groupByPrompt } from '../eval/bootstrap.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const AXES = ['total', 'fidelity', 'detail', 'colour', 'composition'] as const;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** "fidelity 0.635 [0.60, 0.67]" per axis: the mean over samples, its interval resampling prompts. */
function summary(values: (axis: (typeof AXES)[number]) => number[], groups: number[][]): string {
  return AXES.map((a) => {
    const xs = values(a);
    const [lo, hi] = bootstrapInterval(groups, (idx) => mean(idx.map((i) => xs[i])));
    return `${a} ${mean(xs).toFixed(3)} [${lo.toFixed(3)}, ${hi.toFixed(3)}]`;
  }).join('  ');
}

interface ModelSamples { images: Float32Array[]; scores: RewardScores[] }

async function sampleModel(dir: string, prompts: string[], nSeeds: number, steps: number, omega: number): Promise<ModelSamples> {
  const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))]));
  const engine = await createModelEngine(ort, memorySource({ ...manifest, loras: {} }, files));
  const images: Float32Array[] = [], scores: RewardScores[] = [];
  for (const prompt of prompts) {
    for (let s = 0; s < nSeeds; s++) {
      const r = await engine.generate({ ...manifest.defaults, prompt, negativePrompt: '', seed: 1000 + s, steps, omega, alpha: 1, beta: 0, scheduler: arg('scheduler', 'ddim') }, ['baseline'], {});
      const img = r.images.get('baseline')!;
      images.push(img);
      scores.push(scoreImage(img, prompt));
    }
    console.log(`${dir}: ${prompt}: ${scores.slice(-nSeeds).map((x) => x.total.toFixed(2)).join(' ')}`);
  }
  await engine.release();
  return { images, scores };
}

async function main() {
  const dirs = arg('models', 'models').split(',');
  const out = arg('out', 'tmp/base-grid.png');
  const [nPrompts, nSeeds, steps, omega] = ['prompts', 'seeds', 'steps', 'omega'].map((k, i) => Number(arg(k, ['8', '4', '20', '4'][i])));
  const split = arg('split', 'heldout');
  const rng = createRng(77);
  const prompts = split === 'heldout' ? heldOutCaptions(nPrompts) : Array.from({ length: nPrompts }, () => sampleExample(rng).caption);
  const started = performance.now();
  const runs: ModelSamples[] = [];
  for (const dir of dirs) runs.push(await sampleModel(dir, prompts, nSeeds, steps, omega));
  const references = prompts.map((prompt) => renderScene(layoutScene(parseCaption(prompt))));

  const rows = prompts.flatMap((_, p) => [...runs.flatMap((r) => r.images.slice(p * nSeeds, (p + 1) * nSeeds)), references[p]]);
  const grid = imageGrid(rows, 32, dirs.length * nSeeds + 1, 3);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, encodePng(grid.image, grid.width, grid.height));

  const groups = groupByPrompt(prompts.flatMap((p) => Array<string>(nSeeds).fill(p)));
  console.log(`${prompts.length} ${split} prompts × ${nSeeds} seeds, ${steps} steps, ω ${omega}: ${((performance.now() - started) / 1000).toFixed(1)} s; [95 % bootstrap interval over prompts]`);
  runs.forEach((r, m) => console.log(`samples of ${dirs[m]}:  ${summary((a) => r.scores.map((s) => s[a]), groups)}`));
  for (let m = 1; m < runs.length; m++) {
    const diff = (a: (typeof AXES)[number]) => runs[m].scores.map((s, i) => s[a] - runs[0].scores[i][a]);
    console.log(`${dirs[m]} − ${dirs[0]} (paired):  ${summary(diff, groups)}`);
  }
  const referenceScores = references.map((image, p) => scoreImage(image, prompts[p]));
  console.log(`references:  ${summary((a) => referenceScores.map((s) => s[a]), prompts.map((_, p) => [p]))}`);
  console.log(`grid: ${out}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});

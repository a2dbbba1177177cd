// Ranks candidate opening scenes for the page (issue 31): which prompt and seed the playground shows first. The page
// opens on base vs base+NPO (η off), so each candidate is sampled exactly so: θ_pos = θ, θ_neg = θ + β·δ at the
// manifest's ω and β, DDIM, its steps. Candidates are tuning prompts (training-split captions no preference pair used,
// tuningCaptions) × seeds 0…S−1, never held-out ones, so the held-out numbers the page quotes stay untouched by the
// choice. A good opening is one where the base model draws the scene (the reward's fidelity of the base image, at
// least --min-fidelity) and NPO's change is visible (ranked by base+npo − base on the total, detail beside it).
// Usage: npm run rank:openings -- [--model models] [--prompts 24] [--seeds 8] [--min-fidelity 0.9] [--top 10]
import { parseArgs } from 'node:util';
import { scoreImage, type RewardScores } from '../reward/index.ts';
import { engineWith, readModelDirectory } from '../eval/sample-model.ts';
import { tuningCaptionsOf } from './npo-samples.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models' }, prompts: { type: 'string', default: '24' }, seeds: { type: 'string', default: '8' },
    'min-fidelity': { type: 'string', default: '0.9' }, top: { type: 'string', default: '10' },
  },
});

interface Candidate { prompt: string; seed: number; base: RewardScores; npo: RewardScores }

async function main() {
  const started = performance.now();
  const model = readModelDirectory(values.model!);
  const { manifest, files } = model;
  const delta = manifest.loras.delta && files.get(manifest.loras.delta.file);
  if (!delta) throw new Error(`${values.model}/manifest.json lists no δ LoRA`);
  const prompts = tuningCaptionsOf(manifest, Number(values.prompts));
  const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i);
  // Without η, the engine's baseline image is base and its NPO image base+npo (α has nothing to scale).
  const engine = await engineWith(model, { delta });
  const candidates: Candidate[] = [];
  try {
    for (const prompt of prompts) for (const seed of seeds) {
      const { images } = await engine.generate({ ...manifest.defaults, prompt, negativePrompt: '', seed, alpha: 0 }, ['baseline', 'npo'], {});
      candidates.push({ prompt, seed, base: scoreImage(images.get('baseline')!, prompt), npo: scoreImage(images.get('npo')!, prompt) });
    }
  } finally {
    await engine.release();
  }
  const minFidelity = Number(values['min-fidelity']);
  const drawn = candidates.filter((c) => c.base.fidelity >= minFidelity);
  const ranked = drawn.sort((a, b) => gain(b, 'total') - gain(a, 'total'));
  const d = manifest.defaults;
  console.log(`${prompts.length} tuning prompts × ${seeds.length} seeds, base vs base+npo at ω ${d.omega}, β ${d.beta}, ${d.scheduler} ${d.steps} steps `
    + `(${((performance.now() - started) / 1000).toFixed(0)} s): ${drawn.length} with base fidelity ≥ ${minFidelity}, by NPO's gain on the total\n`);
  console.log('rank | prompt | seed | base fidelity | base total | base+npo total | gain total | gain detail');
  console.log('---|---|---|---|---|---|---|---');
  ranked.slice(0, Number(values.top)).forEach((c, i) => console.log([i + 1, c.prompt, c.seed, c.base.fidelity.toFixed(3), c.base.total.toFixed(3), c.npo.total.toFixed(3),
    signed(gain(c, 'total')), signed(gain(c, 'detail'))].join(' | ')));
}

const gain = (c: Candidate, axis: 'total' | 'detail') => c.npo[axis] - c.base[axis];
const signed = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});

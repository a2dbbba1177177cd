// The paper's recipe on the embedded world (issue 5, items 4-5), end to end:
//   1. preference pairs the Pick-a-Pic way: sample the base model twice per training prompt (two seeds), label the
//      winner with the fixed procedural reward (src/reward), drop near-ties;
//   2. η = a Diffusion-DPO LoRA on those pairs; 3. δ = an NPO LoRA: the same loss on the same pairs reversed;
//   4. write eta.safetensors and delta.safetensors into the model directory and record the settings in its manifest.
// Usage: npm run train:npo [-- --model models --prompts 300 --rank 4 --steps 300 --beta 500 --lr 3e-4 --batch 8]
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { serializeLora } from '../lora/serialize.ts';
import { scoreImage } from '../reward/index.ts';
import { encodePairs, type PreferencePair } from '../train/pairs.ts';
import { trainLora } from '../train/train-lora.ts';
import { createRng, fnv1a, sampleExample } from '../world/index.ts';
import { engineWith, readModelDirectory } from '../eval/sample-model.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models' }, prompts: { type: 'string', default: '300' }, rank: { type: 'string', default: '4' },
    steps: { type: 'string', default: '300' }, beta: { type: 'string', default: '500' }, lr: { type: 'string', default: '3e-4' },
    batch: { type: 'string', default: '8' }, seed: { type: 'string', default: '0' }, tie: { type: 'string', default: '0.02' },
    'sample-steps': { type: 'string', default: '20' }, pairs: { type: 'string', default: 'data/pairs.json' },
  },
});
const settings = {
  prompts: Number(values.prompts), rank: Number(values.rank), steps: Number(values.steps), beta: Number(values.beta),
  lr: Number(values.lr), batch: Number(values.batch), seed: Number(values.seed), tie: Number(values.tie), sampleSteps: Number(values['sample-steps']),
};

async function makePairs(): Promise<{ pairs: PreferencePair[]; dropped: number; seconds: number }> {
  const started = performance.now();
  const model = readModelDirectory(values.model!);
  const engine = await engineWith(model, {});
  const rng = createRng(settings.seed + 7);
  const captions = new Set<string>();
  while (captions.size < settings.prompts) captions.add(sampleExample(rng, 'train').caption);
  const pairs: PreferencePair[] = [];
  let dropped = 0;
  let done = 0;
  for (const caption of captions) {
    const base = { ...model.manifest.defaults, prompt: caption, negativePrompt: '', steps: settings.sampleSteps, scheduler: 'ddim' };
    const sample = async (k: number) => (await engine.generate({ ...base, seed: fnv1a(`${k}:${caption}`) }, ['baseline'], {})).images.get('baseline')!;
    const a = await sample(1);
    const b = await sample(2);
    const [sa, sb] = [scoreImage(a, caption).total, scoreImage(b, caption).total];
    if (Math.abs(sa - sb) < settings.tie) dropped++;
    else pairs.push(sa > sb ? { prompt: caption, winner: a, loser: b } : { prompt: caption, winner: b, loser: a });
    if (++done % 50 === 0) console.log(`pairs: ${done}/${captions.size} prompts sampled, ${pairs.length} kept, ${dropped} ties dropped`);
  }
  await engine.release();
  return { pairs, dropped, seconds: (performance.now() - started) / 1000 };
}

async function train(pairs: PreferencePair[], reverse: boolean) {
  const model = readModelDirectory(values.model!);
  const started = performance.now();
  const { lora, history } = await trainLora({
    ort, model: { manifest: { ...model.manifest, loras: {} }, files: model.files }, pairs, reverse, rank: settings.rank, steps: settings.steps,
    beta: settings.beta, lr: settings.lr, batch: settings.batch, seed: settings.seed, sessionOptions: { logSeverityLevel: 3 },
    onStep: (r) => {
      if (r.step % 10 === 0 || r.step === 1) console.log(`${reverse ? 'δ (NPO)' : 'η (DPO)'} step ${r.step}/${r.steps}  loss ${r.loss.toFixed(4)}  acc ${r.accuracy.toFixed(2)}  ${r.stepsPerSecond.toFixed(2)} steps/s`);
    },
  });
  const tail = history.slice(-20);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    lora, seconds: (performance.now() - started) / 1000,
    record: { finalLoss: mean(tail.map((h) => h.loss)), finalAccuracy: mean(tail.map((h) => h.accuracy)), firstLoss: history[0].loss },
  };
}

async function main() {
  const { pairs, dropped, seconds } = await makePairs();
  mkdirSync('data', { recursive: true });
  const size = readModelDirectory(values.model!).manifest.unet.config.sampleSize;
  writeFileSync(values.pairs!, JSON.stringify(encodePairs(pairs, size, size)));
  console.log(`wrote ${values.pairs}: ${pairs.length} pairs (${dropped} near-ties dropped) in ${seconds.toFixed(0)} s`);
  const eta = await train(pairs, false);
  const delta = await train(pairs, true);
  const dir = values.model!;
  const common = { format: 'diffusers', rank: String(settings.rank), beta_dpo: String(settings.beta), steps: String(settings.steps), lr: String(settings.lr) };
  writeFileSync(join(dir, 'eta.safetensors'), serializeLora(eta.lora, 'diffusers', { metadata: { ...common, role: 'eta: Diffusion-DPO on reward-labelled pairs' } }));
  writeFileSync(join(dir, 'delta.safetensors'), serializeLora(delta.lora, 'diffusers', { metadata: { ...common, role: 'delta: NPO (DPO on the same pairs reversed)' } }));

  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const trainingRecord = (which: typeof eta) => ({ ...settings, seconds: Math.round(which.seconds), ...which.record });
  manifest.loras = {
    eta: { file: 'eta.safetensors', role: 'eta', rank: settings.rank, description: 'η: Diffusion-DPO LoRA on reward-labelled pairs of base-model samples' },
    delta: { file: 'delta.safetensors', role: 'delta', rank: settings.rank, description: 'δ: NPO LoRA, the same DPO loss on the same pairs reversed' },
  };
  manifest.training = {
    ...(manifest.training ?? {}),
    pairs: { count: pairs.length, droppedTies: dropped, prompts: settings.prompts, seedsPerPrompt: 2, sampler: `ddim ${settings.sampleSteps} steps`, tie: settings.tie, seconds: Math.round(seconds), reward: 'src/reward scoreImage total (fixed before training)' },
    eta: trainingRecord(eta),
    delta: trainingRecord(delta),
    npoCommand: `npm run train:npo -- ${process.argv.slice(2).join(' ')}`.trim(),
  };
  const others = manifest.files.filter((f: { path: string }) => !['eta.safetensors', 'delta.safetensors'].includes(f.path));
  manifest.files = [...others, ...['eta.safetensors', 'delta.safetensors'].map((path) => {
    const bytes = readFileSync(join(dir, path));
    return { path, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
  })];
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`η: loss ${eta.record.firstLoss.toFixed(3)} → ${eta.record.finalLoss.toFixed(3)}, accuracy ${eta.record.finalAccuracy.toFixed(2)} (${eta.seconds.toFixed(0)} s)`);
  console.log(`δ: loss ${delta.record.firstLoss.toFixed(3)} → ${delta.record.finalLoss.toFixed(3)}, accuracy ${delta.record.finalAccuracy.toFixed(2)} (${delta.seconds.toFixed(0)} s)`);
}

await main();

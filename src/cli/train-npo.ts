// The paper's recipe on the embedded world (issue 5, items 4-5; issue 12, item 3), end to end:
//   1. decisive preference pairs the Pick-a-Pic way (npo-samples.ts): sample the base model K times per training
//      prompt, score every sample with the fixed procedural reward (src/reward), pair the best with the worst when
//      their totals differ by at least --margin (samples are cached in --samples, so a rerun does not resample);
//   2. η = a Diffusion-DPO LoRA on those pairs; 3. δ = an NPO LoRA: the same loss on the same pairs reversed, or
//      (--first-prompt N, issue 31) on pairs of captions N… of the same caption stream, which η never saw;
//   4. write eta.safetensors and delta.safetensors into the model directory and record the settings in its manifest.
// Usage: npm run train:npo [-- --model models --prompts 200 --per-prompt 4 --margin 0.1 --rank 4 --steps 300
//          --beta 500 --lr 1e-3 --batch 8 --seed 0 --first-prompt 0 --samples data/samples.json --role both|eta|delta|pairs]
// The prompts are captions --first-prompt … of one fixed training-caption stream (captionRange); --seed changes the
// training's noise, timesteps, batch order and LoRA initialisation only.
// --role pairs samples and writes the pairs only (for `npm run npo:sweep` before choosing rank and β_dpo).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { serializeLora } from '../lora/serialize.ts';
import { encodePairs, type PreferencePair } from '../train/pairs.ts';
import { trainLora } from '../train/train-lora.ts';
import { readModelDirectory } from '../eval/sample-model.ts';
import { captionRange, decisivePairs, samplePrompts } from './npo-samples.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models' }, prompts: { type: 'string', default: '200' }, rank: { type: 'string', default: '4' },
    steps: { type: 'string', default: '300' }, beta: { type: 'string', default: '500' }, lr: { type: 'string', default: '1e-3' },
    batch: { type: 'string', default: '8' }, seed: { type: 'string', default: '0' }, margin: { type: 'string', default: '0.1' },
    'per-prompt': { type: 'string', default: '4' }, 'first-prompt': { type: 'string', default: '0' }, 'sample-steps': { type: 'string', default: '20' },
    pairs: { type: 'string', default: 'data/pairs.json' }, samples: { type: 'string', default: 'data/samples.json' }, role: { type: 'string', default: 'both' },
  },
});
const settings = {
  prompts: Number(values.prompts), rank: Number(values.rank), steps: Number(values.steps), beta: Number(values.beta),
  lr: Number(values.lr), batch: Number(values.batch), seed: Number(values.seed), margin: Number(values.margin),
  perPrompt: Number(values['per-prompt']), sampleSteps: Number(values['sample-steps']), firstPrompt: Number(values['first-prompt']),
};

async function makePairs(): Promise<{ pairs: PreferencePair[]; dropped: number; meanGap: number; prompts: number; seedsPerPrompt: string; seconds: number }> {
  const started = performance.now();
  const model = readModelDirectory(values.model!);
  const captions = captionRange(settings.firstPrompt, settings.prompts);
  mkdirSync(dirname(values.samples!), { recursive: true });
  const file = await samplePrompts(model, captions, settings.perPrompt, settings.sampleSteps, values.samples!);
  // The samples file (keyed by the UNet's hash and the sampler) may hold other runs' prompts too: pair these only.
  const mine = new Set(captions);
  const { pairs, gaps, dropped } = decisivePairs(file, settings.margin, mine);
  const meanGap = gaps.reduce((a, b) => a + b, 0) / Math.max(1, gaps.length);
  const counts = file.samples.filter((s) => mine.has(s.prompt)).map((s) => s.totals.length);
  const [lo, hi] = [Math.min(...counts), Math.max(...counts)];
  return { pairs, dropped, meanGap, prompts: captions.length, seedsPerPrompt: lo === hi ? String(lo) : `${lo}–${hi}`, seconds: (performance.now() - started) / 1000 };
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
  // Implicit accuracy per batch is noisy (one t and ε per pair): compare the first and the last 30 steps.
  const head = history.slice(0, 30), tail = history.slice(-30);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    lora, seconds: (performance.now() - started) / 1000,
    record: {
      firstLoss: history[0].loss, initialLoss: mean(head.map((h) => h.loss)), initialAccuracy: mean(head.map((h) => h.accuracy)),
      finalLoss: mean(tail.map((h) => h.loss)), finalAccuracy: mean(tail.map((h) => h.accuracy)),
    },
  };
}

const ROLES = {
  eta: { file: 'eta.safetensors', reverse: false, name: 'η', role: 'eta: Diffusion-DPO on reward-labelled pairs', description: 'η: Diffusion-DPO LoRA on decisive reward-labelled pairs of base-model samples' },
  delta: { file: 'delta.safetensors', reverse: true, name: 'δ', role: 'delta: NPO (DPO on the same pairs reversed)', description: 'δ: NPO LoRA, the same DPO loss on the same pairs reversed' },
} as const;

async function main() {
  // --role eta|delta trains one of the two (two processes can then train them side by side); default both.
  const roles = values.role === 'both' ? (['eta', 'delta'] as const) : values.role === 'pairs' ? [] : [values.role as 'eta' | 'delta'];
  if (!roles.every((r) => r in ROLES)) throw new Error(`--role must be eta, delta, both or pairs, got ${values.role}`);
  const { pairs, dropped, meanGap, prompts, seedsPerPrompt, seconds } = await makePairs();
  mkdirSync(dirname(values.pairs!), { recursive: true });
  const size = readModelDirectory(values.model!).manifest.unet.config.sampleSize;
  writeFileSync(values.pairs!, JSON.stringify(encodePairs(pairs, size, size)));
  console.log(`wrote ${values.pairs}: ${pairs.length} pairs, mean reward gap ${meanGap.toFixed(3)} (${dropped} prompts under the margin dropped) in ${seconds.toFixed(0)} s`);
  const dir = values.model!;
  const common = { format: 'diffusers', rank: String(settings.rank), beta_dpo: String(settings.beta), steps: String(settings.steps), lr: String(settings.lr) };
  for (const role of roles) {
    const r = await train(pairs, ROLES[role].reverse);
    writeFileSync(join(dir, ROLES[role].file), serializeLora(r.lora, 'diffusers', { metadata: { ...common, role: ROLES[role].role } }));
    // Read the manifest only now: a second process training the other role may have written it meanwhile.
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const ownPairs = settings.firstPrompt > 0;
    const description = ownPairs && role === 'delta'
      ? `δ: NPO LoRA, the same DPO loss on pairs η never saw (captions ${settings.firstPrompt}…${settings.firstPrompt + prompts - 1}), reversed`
      : ROLES[role].description;
    manifest.loras[role] = { file: ROLES[role].file, role, rank: settings.rank, description };
    const pairsRecord = {
      count: pairs.length, droppedUnderMargin: dropped, prompts, seedsPerPrompt, selection: 'best vs worst of the prompt\'s samples',
      margin: settings.margin, meanGap: Number(meanGap.toFixed(4)), sampler: `ddim ${settings.sampleSteps} steps`,
      reward: 'src/reward scoreImage total (issue 12 version, fixed before training)',
    };
    const record = { ...settings, seconds: Math.round(r.seconds), ...r.record, command: `npm run train:npo -- ${process.argv.slice(2).join(' ')}`.trim() };
    // training.pairs is the shared set (captions 0…), the one tuningCaptionsOf counts; a run on pairs of its own
    // (--first-prompt) keeps their record in its role's entry.
    manifest.training = ownPairs
      ? { ...(manifest.training ?? {}), [role]: { ...record, pairs: pairsRecord } }
      : { ...(manifest.training ?? {}), pairs: pairsRecord, [role]: record };
    delete manifest.training.npoCommand;
    const bytes = readFileSync(join(dir, ROLES[role].file));
    manifest.files = [...manifest.files.filter((f: { path: string }) => f.path !== ROLES[role].file), { path: ROLES[role].file, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') }];
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    console.log(`${ROLES[role].name}: loss ${r.record.initialLoss.toFixed(3)} → ${r.record.finalLoss.toFixed(3)}, implicit accuracy ${r.record.initialAccuracy.toFixed(2)} → ${r.record.finalAccuracy.toFixed(2)} (first → last 30 steps; ${r.seconds.toFixed(0)} s)`);
  }
}

await main();

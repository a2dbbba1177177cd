// A small sweep of LoRA rank and β_dpo for η (issue 12, item 3), on training prompts only: the decisive pairs of
// data/samples.json (npo-samples.ts) are split by prompt (fnv1a(prompt) % --val-every = 0 validates, the rest trains); each
// setting trains η on the training part, then the implicit accuracy and DPO loss are measured on the validation
// pairs with fixed noise and timesteps (the same draws for every setting). Prints a table; the chosen setting goes to
// `npm run train:npo`. Held-out (evaluation) prompts are never in data/samples.json.
// Usage: npm run npo:sweep [-- --model models --samples data/samples.json --margin 0.1 --ranks 4,8 --betas 500,2000
//          --steps 150 --lr 1e-3 --batch 8 --passes 8 --val-every 3]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { readModelDirectory } from '../eval/sample-model.ts';
import type { LoraSet } from '../lora/types.ts';
import type { PreferencePair } from '../train/pairs.ts';
import { createDpoTrainer, trainLora } from '../train/train-lora.ts';
import { fnv1a } from '../world/index.ts';
import { decisivePairs, type SamplesFile } from './npo-samples.ts';
import { implicitMargins, marginSummary } from './implicit-margins.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models' }, samples: { type: 'string', default: 'data/samples.json' }, margin: { type: 'string', default: '0.1' },
    ranks: { type: 'string', default: '4,8' }, betas: { type: 'string', default: '500,2000' }, steps: { type: 'string', default: '150' },
    lr: { type: 'string', default: '1e-3' }, batch: { type: 'string', default: '8' }, passes: { type: 'string', default: '8' }, 'val-every': { type: 'string', default: '3' },
  },
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const model = readModelDirectory(values.model!);
const modelFiles = { manifest: { ...model.manifest, loras: {} }, files: model.files };

/** Implicit accuracy and DPO loss of `lora` on `pairs`, `passes` times over with fixed ε and t (seed 1234). */
async function validate(lora: LoraSet, rank: number, beta: number, pairs: PreferencePair[], passes: number) {
  const trainer = await createDpoTrainer({ ort, model: modelFiles, prompts: [...new Set(pairs.map((p) => p.prompt))], rank, sessionOptions: { logSeverityLevel: 3 } });
  try {
    return marginSummary(await implicitMargins(trainer, lora, pairs, passes), beta * trainer.betaScale);
  } finally {
    await trainer.release();
  }
}

async function main() {
  const file = JSON.parse(readFileSync(values.samples!, 'utf8')) as SamplesFile;
  const isVal = (prompt: string) => fnv1a(prompt) % Number(values['val-every']) === 0;
  const prompts = file.samples.map((s) => s.prompt);
  const train = decisivePairs(file, Number(values.margin), new Set(prompts.filter((p) => !isVal(p))));
  const val = decisivePairs(file, Number(values.margin), new Set(prompts.filter(isVal)));
  if (!val.pairs.length || !train.pairs.length) throw new Error(`--val-every ${values['val-every']} leaves ${train.pairs.length} training and ${val.pairs.length} validation pairs; both need some (training captions all have fnv1a % 10 ≠ 0, so 10 and its multiples select none)`);
  console.log(`${train.pairs.length} training pairs, ${val.pairs.length} validation pairs (margin ${values.margin}; mean gap ${mean(train.gaps).toFixed(3)})`);
  const steps = Number(values.steps), passes = Number(values.passes);
  const rows: string[] = [];
  for (const rank of values.ranks!.split(',').map(Number)) {
    for (const beta of values.betas!.split(',').map(Number)) {
      const started = performance.now();
      const { lora, history } = await trainLora({
        ort, model: modelFiles, pairs: train.pairs, rank, steps, beta, lr: Number(values.lr), batch: Number(values.batch), seed: 0,
        sessionOptions: { logSeverityLevel: 3 },
      });
      const tail = history.slice(-Math.min(30, history.length));
      // Before training the LoRA is zero (B = 0): policy = reference, so loss = ln 2 and accuracy = ½ (ties count half).
      const after = await validate(lora, rank, beta, val.pairs, passes);
      const row = `| ${rank} | ${beta} | ${mean(tail.map((h) => h.loss)).toFixed(3)} | ${mean(tail.map((h) => h.accuracy)).toFixed(3)} | ${after.loss.toFixed(3)} | ${after.accuracy.toFixed(3)} | ${Math.round((performance.now() - started) / 1000)} |`;
      rows.push(row);
      console.log(row);
    }
  }
  console.log(`\nη sweep (${steps} steps, lr ${values.lr}, batch ${values.batch}; validation: ${val.pairs.length} pairs × ${passes} draws)\n`);
  console.log('| rank | β_dpo | train loss (last 30) | train acc (last 30) | val loss (ln 2 = 0.693 untrained) | val implicit acc (0.5 untrained) | s |\n|---|---|---|---|---|---|---|');
  rows.forEach((r) => console.log(r));
}

await main();

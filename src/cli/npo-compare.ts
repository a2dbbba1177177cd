// How LoRAs relate (issue 31, item 5), two ways, for every two of the files named:
//   weights:   the cosine of their weight changes ΔW = scale·up·down over all sites (src/lora/compare.ts). Two LoRAs
//              trained from different seeds start from different random `down` matrices, so their rank-r updates lie
//              in different subspaces and this cosine stays near 0 even when they do the same thing;
//   function:  the Pearson correlation of their implicit DPO reward margins (implicit-margins.ts) on the same pairs
//              with the same ε and t: whether they prefer the same images, whatever their parametrisation.
// Usage: npm run npo:compare -- [--model models] [--pairs data/pairs.json] [--passes 1] A.safetensors B.safetensors …
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { readModelDirectory } from '../eval/sample-model.ts';
import { compareLoras, parseLorasFor } from '../lora/compare.ts';
import { parsePairsAtOwnSize } from '../train/pairs.ts';
import { createDpoTrainer } from '../train/train-lora.ts';
import { correlation, implicitMargins, marginSummary } from './implicit-margins.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { model: { type: 'string', default: 'models' }, pairs: { type: 'string', default: 'data/pairs.json' }, passes: { type: 'string', default: '1' } },
});

async function main() {
  if (positionals.length < 2) throw new Error('name at least two LoRA files (safetensors) to compare');
  const model = readModelDirectory(values.model!);
  const size = model.manifest.unet.config.sampleSize;
  const pairs = parsePairsAtOwnSize(readFileSync(values.pairs!, 'utf8'), () => ({ width: size, height: size }));
  const loras = parseLorasFor(model.files.get(model.manifest.unet.file)!, positionals.map((f) => readFileSync(f)));
  const ranks = new Set(loras.map((l) => [...l.entries.values()][0].rank));
  if (ranks.size !== 1) throw new Error(`the LoRAs must share one rank to run in one graph, got ranks ${[...ranks].join(', ')}`);
  const trainer = await createDpoTrainer({
    ort, model: { manifest: { ...model.manifest, loras: {} }, files: model.files }, prompts: [...new Set(pairs.map((p) => p.prompt))],
    rank: [...ranks][0], sessionOptions: { logSeverityLevel: 3 },
  });
  const margins: Float64Array[] = [];
  try {
    for (const lora of loras) margins.push(await implicitMargins(trainer, lora, pairs, Number(values.passes)));
  } finally {
    await trainer.release();
  }
  console.log(`${pairs.length} pairs of ${values.pairs} × ${values.passes} draws of ε and t (seed 1234)\n\n| LoRA | implicit accuracy on the pairs | mean margin |\n|---|---|---|`);
  positionals.forEach((f, i) => {
    const mean = margins[i].reduce((s, m) => s + m, 0) / margins[i].length;
    console.log(`| ${f} | ${marginSummary(margins[i], 1).accuracy.toFixed(3)} | ${mean.toExponential(2)} |`);
  });
  console.log('\n| A | B | ΔW cosine | ΔW per-site cosine (min … max) | margin correlation |\n|---|---|---|---|---|');
  for (let i = 0; i < loras.length; i++) {
    for (let j = i + 1; j < loras.length; j++) {
      const w = compareLoras(loras[i], loras[j]);
      console.log(`| ${positionals[i]} | ${positionals[j]} | ${w.cosine.toFixed(3)} | ${w.siteCosines.min.toFixed(2)} … ${w.siteCosines.max.toFixed(2)} | ${correlation(margins[i], margins[j]).toFixed(3)} |`);
    }
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});

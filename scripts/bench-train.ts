// Training throughput of the DPO / NPO step on the embedded model in Node (onnxruntime-node, CPU EP):
// one step = one run of the DPO gradient graph (policy forward + backward and reference forward on 2B images)
// + one AdamW update. Usage: npm run bench:train [-- --model models --rank 8 --steps 5 --batches 1,4,8]
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createGenerator } from '../src/diffusion/noise/index.ts';
import { parseManifest } from '../src/model/manifest.ts';
import { createAdamW } from '../src/train/optimizer.ts';
import { createRandom } from '../src/train/random.ts';
import { createDpoTrainer } from '../src/train/train-lora.ts';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'models' }, rank: { type: 'string', default: '8' }, steps: { type: 'string', default: '5' }, batches: { type: 'string', default: '1,4,8' } } });
const dir = values.model!;
const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))]));
const rank = Number(values.rank);
const steps = Number(values.steps);
const { sampleSize: S, inChannels: C } = manifest.unet.config;
const r = createRandom(1);
const image = () => Float32Array.from({ length: C * S * S }, () => r.uniform() * 2 - 1);
const prompt = manifest.defaults.prompt;

const setupStart = performance.now();
const trainer = await createDpoTrainer({ ort, model: { manifest, files }, prompts: [prompt], rank, sessionOptions: { logSeverityLevel: 3 } });
const setupMs = performance.now() - setupStart;
const optimizer = createAdamW(trainer.params, { lr: 1e-5, maxGradNorm: 1 });
const draw = { noise: createGenerator(0), random: createRandom(2) };

const rows: string[][] = [];
for (const batch of values.batches!.split(',').map(Number)) {
  const pairs = Array.from({ length: batch }, () => ({ prompt, winner: image(), loser: image() }));
  optimizer.step((await trainer.run(pairs, draw, 2500)).grads); // warm-up: first-run allocations, JIT
  let runMs = 0;
  let optMs = 0;
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const out = await trainer.run(pairs, draw, 2500);
    const t1 = performance.now();
    optimizer.step(out.grads);
    optMs += performance.now() - t1;
    runMs += t1 - t0;
  }
  const stepMs = (runMs + optMs) / steps;
  rows.push([String(batch), (1000 / stepMs).toFixed(2), ((1000 * batch) / stepMs).toFixed(1), stepMs.toFixed(0), (runMs / steps).toFixed(0), (optMs / steps).toFixed(1)]);
}
await trainer.release();

const params = [...trainer.params.values()].reduce((n, p) => n + p.length, 0);
console.log(`DPO/NPO training step, embedded model "${manifest.name}" (${S}×${S}×${C}), LoRA rank ${rank} on ${trainer.graph.lora.length} modules (${params} parameters)`);
console.log(`onnxruntime-node CPU EP, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${steps} timed steps per batch size after 1 warm-up; setup (graph + gradient + session) ${(setupMs / 1000).toFixed(1)} s`);
const header = ['batch (pairs)', 'steps/s', 'pairs/s', 'ms/step', 'ms ORT run', 'ms AdamW'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
console.log([line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));

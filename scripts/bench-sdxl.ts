// SDXL memory table: for a structurally exact SDXL base UNet (the parameter list diffusers builds from SDXL's config,
// src/model/unet-params.ts, 2,567,463,684 parameters), the bytes of weights resident per NPO case
// (src/model/npo-memory.ts) in fp16 and fp32, with the released SDXL NPO LoRA's rank (8) on its 560 attention
// projections, and the SPO+NPO LoRA's (rank 64 on attn1 only) for comparison. Weights only: the two text encoders
// (~1.6 GB fp16), the VAE and ORT's activations come on top.
// The re-merge kernels are the same as SD1.5's: `npm run bench:sd15` times them (GB/s), and an SDXL re-merge moves
// 2,567,463,684 / 859,520,964 ≈ 3.0× the bytes. Per-step NPO vs CFG cost: timed on the tiny SDXL fixture on
// onnxruntime-node's CPU backend (scripts/sdxl-step-cost.ts), one run of 20 steps, median step.
// Run: `npm run bench:sdxl` (`-- --memory-only` skips the timing).
import { numel, SDXL_UNET_CONFIG, unetParameters } from '../src/model/unet-params.ts';
import { deltaSites, loraParams, residentTable, textTable } from '../src/model/npo-memory.ts';
import { sdxlStepCosts } from './sdxl-step-cost.ts';
import { npoWorkerArrays } from '../src/model/fit.ts';
import type { NpoFootprint } from '../src/model/manifest.ts';

const params = unetParameters(SDXL_UNET_CONFIG);
const total = params.reduce((a, p) => a + numel(p.shape), 0);
const sites = deltaSites(params);
const attn1 = sites.filter((p) => /\.attn1\./.test(p.name));
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

console.log(`\nSDXL base UNet (diffusers UNet2DConditionModel, SDXL config): ${params.length} tensors, ${total.toLocaleString('en-US')} parameters`);
console.log('Weights resident on the device (UNet only; text encoders, VAE and activations come on top):\n');
console.log(residentTable(params, 8));
console.log(`\nδ sites: the ${sites.length} attention projections (to_q/to_k/to_v/to_out.0), ${sites.reduce((a, p) => a + numel(p.shape), 0).toLocaleString('en-US')} parameters.\n`);
console.log(textTable([
  ['LoRA', 'sites', 'parameters', 'fp32', 'fp16'],
  ...[['NPO SDXL (sdxl_beta2k_2kiter, rank 8)', sites, 8], ['SPO+NPO (spo_npo_10ep, rank 64, attn1)', attn1, 64]].map(([name, s, r]) => {
    const n = loraParams(s as typeof sites, r as number);
    return [name as string, String((s as typeof sites).length), n.toLocaleString('en-US'), mb(4 * n), mb(2 * n)];
  }),
]));

// What the worker holds for NPO beyond the files (src/engine/weights-cpu.ts: θ_pos/θ_neg of the touched weights
// in the model's dtype, a LoRA's ΔW made per weight while merging), as src/model/fit.ts npoWorkerArrays counts it.
// "Before" is the float32 merge up to commit 1c6a9fd (θ_pos, θ_neg and each offset's dense ΔW in float32).
const siteParams = sites.reduce((a, p) => a + numel(p.shape), 0);
const largest = (ps: typeof params) => Math.max(...ps.map((p) => numel(p.shape)));
const gb = (bytes: number) => `${(bytes / 1e9).toFixed(2)} GB`;
const workerCases: [string, NpoFootprint][] = [2, 4].flatMap((elementBytes) => [
  [`(b) LoRA δ rank 8, ${elementBytes === 2 ? 'fp16' : 'fp32'}`, { touchedElements: siteParams, largestTouchedElements: largest(sites), stacked: true, offsetArrays: 1, elementBytes }],
  [`(c1) dense η + LoRA δ, ${elementBytes === 2 ? 'fp16' : 'fp32'}`, { touchedElements: total, largestTouchedElements: largest(params), stacked: false, offsetArrays: 2, elementBytes }],
] as [string, NpoFootprint][]);
console.log('\nWorker merge arrays beyond the files (CPU):\n');
console.log(textTable([
  ['case', 'θ_pos/θ_neg sets', 'one weight scratch', 'total now', 'before (float32 merge)'],
  ...workerCases.map(([label, f]) => {
    const w = npoWorkerArrays(f);
    return [label, gb(w.sets), mb(w.scratch), gb(w.sets + w.scratch), gb(4 * f.touchedElements * (2 + f.offsetArrays))];
  }),
]));

if (!process.argv.includes('--memory-only')) {
  const costs = await sdxlStepCosts();
  const cfg = new Map([[false, costs[0].msPerStep], [true, costs[2].msPerStep]]);
  console.log('\nPer-step cost, NPO vs plain CFG (tiny SDXL fixture 64², onnxruntime-node CPU, 1 thread, median of 19 steps, one run):\n');
  console.log(textTable([
    ['case', 'UNet calls/step', 'ms/step', '× plain CFG'],
    ...costs.map((c, i) => [c.label, String(c.unetCalls), c.msPerStep.toFixed(2), (c.msPerStep / cfg.get(i >= 2)!).toFixed(2)]),
  ]));
}

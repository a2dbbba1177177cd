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

// The prepared pipeline merges θ_pos and θ_neg on the CPU in float32 (src/pipelines/unet-weights.ts), holding θ_pos and
// θ_neg at the touched weights and each offset's dense ΔW: what src/model/fit.ts counts as the worker's memory.
const siteParams = sites.reduce((a, p) => a + numel(p.shape), 0);
console.log(`\nWorker merge arrays (float32, CPU): case (b) θ_pos + θ_neg at δ's sites + δ's ΔW = 3 × ${siteParams.toLocaleString('en-US')} × 4 B = ${(12 * siteParams / 1e9).toFixed(2)} GB; `
  + `case (c1) with a dense η: 4 × ${total.toLocaleString('en-US')} × 4 B = ${(16 * total / 1e9).toFixed(2)} GB.`);

if (!process.argv.includes('--memory-only')) {
  const costs = await sdxlStepCosts();
  const cfg = new Map([[false, costs[0].msPerStep], [true, costs[2].msPerStep]]);
  console.log('\nPer-step cost, NPO vs plain CFG (tiny SDXL fixture 64², onnxruntime-node CPU, 1 thread, median of 19 steps, one run):\n');
  console.log(textTable([
    ['case', 'UNet calls/step', 'ms/step', '× plain CFG'],
    ...costs.map((c, i) => [c.label, String(c.unetCalls), c.msPerStep.toFixed(2), (c.msPerStep / cfg.get(i >= 2)!).toFixed(2)]),
  ]));
}

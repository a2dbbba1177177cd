// SDXL memory table: for a structurally exact SDXL base UNet (the parameter list diffusers builds from SDXL's config,
// src/model/unet-params.ts, 2,567,463,684 parameters), the bytes of weights resident per NPO case
// (src/model/npo-memory.ts) in fp16 and fp32, with the released SDXL NPO LoRA's rank (8) on its 560 attention
// projections, and the SPO+NPO LoRA's (rank 64 on attn1 only) for comparison. Weights only: the two text encoders
// (~1.6 GB fp16), the VAE and ORT's activations come on top.
// The re-merge kernels are the same as SD1.5's: `npm run bench:sd15` times them (GB/s), and an SDXL re-merge moves
// 2,567,463,684 / 859,520,964 ≈ 3.0× the bytes. Per-step NPO vs CFG cost needs the real weights (not here).
// Run: `npm run bench:sdxl`.
import { numel, SDXL_UNET_CONFIG, unetParameters } from '../src/model/unet-params.ts';
import { deltaSites, loraParams, residentTable, textTable } from '../src/model/npo-memory.ts';

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

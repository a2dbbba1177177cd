// Turns a downloaded Stable Diffusion ONNX export (+ optional DPO UNet or η LoRA, δ LoRA) into a prepared model
// directory the page and the CLIs load (PreparedManifest, src/model/manifest.ts; pipeline in src/prepare/prepare.ts).
//   npm run prepare-model -- --onnx <export dir> [--eta-unet <diffusers unet dir> [--eta-rank r]] [--eta-lora <file>[:scale]]…
//                            [--delta-lora <file>[:scale]]… --out <dir> [--dtype float32|float16] [--shard-mb 1024]
// --eta-lora / --delta-lora may be repeated: the LoRAs stack on that branch, each ΔW times its scale (default 1), e.g.
// the paper's SPO+NPO recipe: --eta-lora spo.safetensors --delta-lora spo_npo_10ep.safetensors (θ_pos = θ + SPO,
// θ_neg = θ + α·SPO + β·NPO, as G-U-N/Diffusion-NPO gen_xl.py load_spo_ours_pipeline).
// --vae <dir>: another VAE decoder export (e.g. madebyollin/sdxl-vae-fp16-fix); with --dtype float16 a VAE whose
// config says force_upcast (SDXL's) is kept float32, as diffusers runs it, while the fp16-fix VAE is converted.
// Progress and the report go to stderr; the last line on stdout is the manifest's path. A thin front end: the page's
// prepare worker runs the same src/prepare/prepare.ts over chosen files or the Hub (node-io.ts: the folders on disk).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInt } from './int-arg.ts';
import { formatBytes } from '../util/format-bytes.ts';
import { prepareFromPaths } from '../prepare/node-io.ts';
import type { WeightDtype } from '../model/manifest.ts';
import { parseLoraArgs } from './lora-arg.ts';

const USAGE = 'usage: npm run prepare-model -- --onnx <export dir> --out <dir> [--eta-unet <diffusers unet dir> [--eta-rank r]] '
  + '[--eta-lora <file>[:scale]]… [--delta-lora <file>[:scale]]… [--dtype float32|float16] [--vae <vae_decoder export dir>] [--shard-mb 1024] [--name <name>]';

async function main() {
  const { values } = parseArgs({
    options: {
      onnx: { type: 'string' }, out: { type: 'string' }, 'eta-unet': { type: 'string' }, 'eta-lora': { type: 'string', multiple: true },
      'delta-lora': { type: 'string', multiple: true }, 'eta-rank': { type: 'string' }, dtype: { type: 'string' }, 'shard-mb': { type: 'string' },
      name: { type: 'string' }, vae: { type: 'string' }, help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (!values.onnx || !values.out) throw new Error(`--onnx and --out are required\n${USAGE}`);
  if (values.dtype !== undefined && values.dtype !== 'float32' && values.dtype !== 'float16') throw new Error(`--dtype must be float32 or float16, got ${values.dtype}`);
  const shardMb = positiveInt(values['shard-mb'], 'shard-mb');
  if (shardMb !== undefined && shardMb > 2000) throw new Error('--shard-mb must stay under 2000 (browsers cannot hold larger files in one ArrayBuffer)');
  const started = Date.now();
  const result = await prepareFromPaths({
    onnx: values.onnx, out: values.out, etaUnet: values['eta-unet'], etaLora: parseLoraArgs(values['eta-lora'], 'eta-lora'), deltaLora: parseLoraArgs(values['delta-lora'], 'delta-lora'),
    etaRank: positiveInt(values['eta-rank'], 'eta-rank'), dtype: values.dtype as WeightDtype | undefined,
    vae: values.vae, maxShardBytes: shardMb === undefined ? undefined : shardMb * 1024 * 1024, name: values.name,
    log: (line) => console.error(line),
  });
  const rows = result.summary.map((s) => [s.component, String(s.tensors), formatBytes(s.bytes), String(s.shards)]);
  const header = ['component', 'tensors', 'bytes', 'shards'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.error(['', line(header), ...rows.map(line)].join('\n'));
  for (const note of result.notes) console.error(`note: ${note}`);
  const peak = process.resourceUsage().maxRSS * 1024;
  console.error(`verified ${result.manifest.files.length} files (sizes, SHA-256, external-data ranges) in ${((Date.now() - started) / 1000).toFixed(1)} s; peak RSS ${formatBytes(peak)}`);
  console.log(join(values.out, 'manifest.json'));
}

main().catch((error) => {
  console.error(`prepare-model: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

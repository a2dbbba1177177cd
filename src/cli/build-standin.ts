// Writes a stand-in model directory: the embedded architecture (a tiny SD-shaped UNet and text encoder) with seeded
// random weights, plus small random η and δ LoRAs on every attention projection. It was the page's model until the
// trained one replaced it in models/; it remains a quick, training-free model for experiments and fixtures.
// Usage: npm run build:standin [-- --out tmp/standin]   (never point it at models/: that holds the trained model)
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { paramSource } from '../embedded/layers.ts';
import { randomLora } from '../embedded/random-lora.ts';
import { buildTextEncoder, TINY_TEXT_ENCODER } from '../embedded/text-encoder.ts';
import { buildUnet, TINY_UNET } from '../embedded/unet.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { externalizeWeights, writeModel } from '../onnx/model-io.ts';
import type { ModelManifest } from '../model/manifest.ts';

const STANDIN_NOTE = 'stand-in: seeded random values, not trained';
const outDir = process.argv.includes('--out') ? process.argv[process.argv.indexOf('--out') + 1] : 'tmp/standin';

function main() {
  mkdirSync(outDir, { recursive: true });
  const unet = buildUnet(TINY_UNET, paramSource(1234));
  const { model: unetExternal, data } = externalizeWeights(unet, 'unet.onnx.data');
  const sites = findLoraSites(unet);
  const files: Record<string, Uint8Array> = {
    'unet.onnx': writeModel(unetExternal),
    'unet.onnx.data': data,
    'text_encoder.onnx': writeModel(buildTextEncoder(TINY_TEXT_ENCODER, paramSource(99))),
    'eta.safetensors': randomLora(sites, { rank: 4, seed: 7, std: 0.2, note: STANDIN_NOTE }),
    'delta.safetensors': randomLora(sites, { rank: 4, seed: 8, std: 0.2, note: STANDIN_NOTE }),
  };
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(outDir, name), bytes);

  const manifest: ModelManifest = {
    name: 'embedded-standin',
    description: 'Stand-in for the embedded model: SD-shaped pixel-space UNet (32×32 RGB) with seeded random weights.',
    status: 'standin',
    unet: { file: 'unet.onnx', config: TINY_UNET },
    textEncoder: { file: 'text_encoder.onnx', config: TINY_TEXT_ENCODER },
    scheduler: {
      _class_name: 'DDIMScheduler', num_train_timesteps: 1000, beta_schedule: 'squaredcos_cap_v2',
      prediction_type: 'epsilon', timestep_spacing: 'trailing', clip_sample: false, set_alpha_to_one: false, steps_offset: 0,
    },
    defaults: { prompt: 'a small red circle above a large blue square', negativePrompt: '', steps: 20, omega: 4, alpha: 1, beta: 1, seed: 42, scheduler: 'ddim' },
    loras: {
      eta: { file: 'eta.safetensors', role: 'eta', rank: 4, description: 'stand-in η (random)' },
      delta: { file: 'delta.safetensors', role: 'delta', rank: 4, description: 'stand-in δ (random)' },
    },
    files: Object.keys(files).map((path) => {
      const bytes = readFileSync(join(outDir, path));
      return { path, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
    }),
  };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote ${outDir}/: ${manifest.files.map((f) => `${f.path} (${(f.bytes / 1024).toFixed(0)} KiB)`).join(', ')}`);
}

main();

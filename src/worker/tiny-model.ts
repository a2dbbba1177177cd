// A much smaller model in the embedded model's format (manifest + files), for tests that run many generations: an
// SD-shaped UNet with blockOutChannels [8, 16] on 16×16 RGB, the embedded text encoder, random η and δ LoRAs on every
// attention projection. Built in memory from seeded parameters (no files in the repo); `writeTinyModel` puts it in a
// directory the page can load with ?model=<url>.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { paramSource } from '../embedded/layers.ts';
import { randomLora } from '../embedded/random-lora.ts';
import { buildTextEncoder, TINY_TEXT_ENCODER } from '../embedded/text-encoder.ts';
import { buildUnet, TINY_UNET } from '../embedded/unet.ts';
import type { ModelManifest } from '../model/manifest.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { writeModel } from '../onnx/model-io.ts';

const FIXTURE_NOTE = 'test fixture: seeded random values';

export const TINY_FIXTURE_UNET = { ...TINY_UNET, sampleSize: 16, blockOutChannels: [8, 16], crossAttention: [false, true], normGroups: 4, attentionHeadDim: 8 };

/**
 * `predictionType: 'sample'` makes the random UNet's output the image itself, so final samples stay in a moderate range
 * (with 'epsilon' a random UNet's x̂₀ = (x − √(1−ᾱ)·ε)/√ᾱ reaches ~1e5 and every pixel saturates).
 */
export function buildTinyModel(options: { predictionType?: 'epsilon' | 'sample' } = {}): { manifest: ModelManifest; files: Map<string, Uint8Array> } {
  const unet = buildUnet(TINY_FIXTURE_UNET, paramSource(1));
  const sites = findLoraSites(unet);
  const files = new Map<string, Uint8Array>([
    ['unet.onnx', writeModel(unet)],
    ['text_encoder.onnx', writeModel(buildTextEncoder(TINY_TEXT_ENCODER, paramSource(2)))],
    ['eta.safetensors', randomLora(sites, { rank: 2, seed: 3, std: 0.3, note: FIXTURE_NOTE })],
    ['delta.safetensors', randomLora(sites, { rank: 2, seed: 4, std: 0.3, note: FIXTURE_NOTE })],
  ]);
  const manifest: ModelManifest = {
    name: 'tiny-fixture',
    description: 'Test fixture: a tiny SD-shaped UNet with seeded random weights.',
    status: 'standin',
    unet: { file: 'unet.onnx', config: TINY_FIXTURE_UNET },
    textEncoder: { file: 'text_encoder.onnx', config: TINY_TEXT_ENCODER },
    scheduler: { _class_name: 'DDIMScheduler', num_train_timesteps: 1000, beta_schedule: 'squaredcos_cap_v2', prediction_type: options.predictionType ?? 'epsilon', timestep_spacing: 'trailing', clip_sample: false, set_alpha_to_one: false, steps_offset: 0 },
    defaults: { prompt: 'a small red circle above a large blue square', negativePrompt: '', steps: 4, omega: 4, alpha: 1, beta: 1, seed: 42, scheduler: 'ddim' },
    loras: { eta: { file: 'eta.safetensors', role: 'eta', rank: 2, description: 'fixture η' }, delta: { file: 'delta.safetensors', role: 'delta', rank: 2, description: 'fixture δ' } },
    files: [...files].map(([path, bytes]) => ({ path, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') })),
  };
  return { manifest, files };
}

export function writeTinyModel(dir: string): ModelManifest {
  const { manifest, files } = buildTinyModel();
  mkdirSync(dir, { recursive: true });
  for (const [path, bytes] of files) writeFileSync(join(dir, path), bytes);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

// force_upcast and the fp16-fix VAE (issue 16): SDXL's VAE config says force_upcast, so diffusers runs it in float32
// whatever the pipeline's dtype. prepare-model --dtype float16 keeps such a VAE float32 and converts the rest; a VAE
// given with --vae whose config says force_upcast false (madebyollin/sdxl-vae-fp16-fix) is converted. Both decoders
// then decode diffusers' final latents of the tiny SDXL fixture to diffusers' image (fixtures/sdxl references).
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { assembleSdxlExport, SDXL_FIXTURE } from '../../scripts/fixtures/sdxl-export.ts';
import { readSafetensors } from '../lora/safetensors.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { floatInput, floatOutput } from '../pipelines/float-tensors.ts';
import { createComponentSession } from '../pipelines/onnx-component.ts';
import { readModelDirectory } from '../pipelines/read-directory.ts';
import { psnr } from '../pipelines/reference-metrics.ts';
import { prepareFromPaths } from './node-io.ts';

const references = readSafetensors(new Uint8Array(readFileSync(join(SDXL_FIXTURE, 'references.safetensors')))).tensors;
const latents = references.get('gen.euler.cfg.latents')!.data;
const image = references.get('gen.euler.cfg.image_float')!.data;

async function prepare(options: { dtype?: 'float16'; vae?: string }) {
  const out = join(mkdtempSync(join(tmpdir(), 'vae-upcast-')), 'model');
  const result = await prepareFromPaths({ onnx: assembleSdxlExport(), out, ...options });
  return { ...result, dir: readModelDirectory(out) };
}

/** diffusers' decode: vae.decode(latents / scaling_factor), through the prepared VAE decoder in its own dtype. */
async function decode(manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>) {
  const session = await createComponentSession(ort, manifest.vaeDecoder, files);
  const scaled = latents.map((v) => v / manifest.latent.scalingFactor);
  const out = await session.run({ latent_sample: floatInput(ort, manifest.vaeDecoder.inputs.latent_sample, scaled, [1, 4, 8, 8]) });
  await session.release();
  return floatOutput(out.sample).slice();
}

describe('prepare-model: VAE force_upcast and --vae', () => {
  it('--dtype float16 keeps a force_upcast VAE float32 (decoder and encoder) and converts the UNet and encoders', async () => {
    const { manifest, notes, dir } = await prepare({ dtype: 'float16' });
    expect([manifest.unet.dtype, manifest.textEncoder.dtype, manifest.sdxl!.textEncoder2.dtype]).toEqual(['float16', 'float16', 'float16']);
    expect([manifest.vaeDecoder.dtype, manifest.vaeEncoder!.dtype]).toEqual(['float32', 'float32']);
    expect(notes.join('\n')).toMatch(/vae_decoder: kept float32 under --dtype float16, as its config says force_upcast/);
    expect(psnr(await decode(manifest, dir.files), image)).toBeGreaterThan(60); // float32: diffusers' own numbers
  });

  it('--vae with an fp16-fix config (force_upcast false) is used and converted to float16', async () => {
    const vae = mkdtempSync(join(tmpdir(), 'fp16-fix-'));
    try {
      cpSync(join(SDXL_FIXTURE, 'export-optimum/vae_decoder'), vae, { recursive: true });
      const config = JSON.parse(readFileSync(join(vae, 'config.json'), 'utf8'));
      writeFileSync(join(vae, 'config.json'), JSON.stringify({ ...config, force_upcast: false }));
      const { manifest, notes, dir } = await prepare({ dtype: 'float16', vae });
      // float16 weights and arithmetic; float16-graph.ts keeps the graph's float32 inputs and outputs (casts inside)
      expect([manifest.vaeDecoder.dtype, manifest.vaeEncoder!.dtype]).toEqual(['float16', 'float32']);
      expect(manifest.source.vae).toBe(vae);
      expect(notes.join('\n')).not.toMatch(/vae_decoder: kept float32/);
      expect(psnr(await decode(manifest, dir.files), image)).toBeGreaterThan(40); // the same weights, rounded to float16
    } finally {
      rmSync(vae, { recursive: true, force: true });
    }
  });

  it('refuses a --vae folder without a decoder export, naming what it looked for', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-vae-'));
    await expect(prepare({ vae: empty })).rejects.toThrow(/--vae .* holds no VAE decoder export: expected .*model\.onnx or .*vae_decoder\/model\.onnx/);
  });
});

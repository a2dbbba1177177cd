// A drop on "Prepare a model…" is sorted by its paths: the repository's own fixtures' layouts (fixtures/sd15's
// diffusers and optimum exports, fixtures/*/dpo-unet) as they are on disk, and a whole diffusers repository.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { droppedFileInput, droppedFolderInput, subfolder } from './dropped-inputs.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const pathsIn = (dir: string): string[] => readdirSync(dir).flatMap((name) => {
  const full = join(dir, name);
  return statSync(full).isDirectory() ? pathsIn(full) : [full];
});
const folder = (dir: string) => pathsIn(join(FIXTURES, dir)).map((p) => relative(join(FIXTURES, dir), p));

describe('dropped inputs', () => {
  it('knows the exports, the DPO UNets and LoRAs of the fixtures', () => {
    for (const dir of ['sd15/export-diffusers', 'sd15/export-optimum', 'sdxl/export-optimum']) expect(droppedFolderInput(dir, folder(dir))).toEqual({ role: 'onnx' });
    for (const dir of ['sd15/dpo-unet', 'sdxl/dpo-unet']) expect(droppedFolderInput(dir, folder(dir))).toEqual({ role: 'etaUnet', folder: '' });
    expect(droppedFileInput('delta-diffusers.safetensors')).toEqual({ role: 'delta' });
  });

  it('takes the unet/ of a whole diffusers repository, with paths relative to it', () => {
    const repo = new Map([['model_index.json', 1], ['unet/config.json', 2], ['unet/diffusion_pytorch_model.safetensors', 3], ['vae/config.json', 4]]);
    expect(droppedFolderInput('dpo-sd1.5-text2image-v1', repo.keys())).toEqual({ role: 'etaUnet', folder: 'unet' });
    expect([...subfolder(repo, 'unet')]).toEqual([['config.json', 2], ['diffusion_pytorch_model.safetensors', 3]]);
    // Sharded weights count too
    expect(droppedFolderInput('x', ['diffusion_pytorch_model-00001-of-00002.safetensors'])).toEqual({ role: 'etaUnet', folder: '' });
  });

  it('names what it cannot use and what it expected', () => {
    expect(droppedFolderInput('photos', ['a.png', 'unet/readme.txt'])).toMatchObject({ role: 'unknown', why: expect.stringMatching(/^photos\/ is neither an ONNX export \(no unet\/model\.onnx\)/) });
    expect(droppedFileInput('model.ckpt')).toMatchObject({ role: 'unknown', why: expect.stringMatching(/^model\.ckpt is not a LoRA/) });
  });
});

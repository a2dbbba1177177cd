// The fit check refuses, before any download, what the browser cannot hold, and says why with the numbers.
import { describe, expect, it } from 'vitest';
import { checkFit } from './fit.ts';
import type { PreparedManifest } from './manifest.ts';

const component = (file: string, largestTensorBytes: number) => ({ file, externalData: [], inputs: {}, outputs: [], dtype: 'float32' as const, largestTensorBytes });
/** SD1.5 fp32 as prepare-model would describe it: 3.44 GB of UNet weights in two shards, 492 MB text encoder, 198 MB VAE. */
const sd15 = {
  format: 2, kind: 'sd15', name: 'sd15', status: 'prepared',
  unet: component('unet/model.onnx', 1280 * 2560 * 4 * 3 * 3 / 4), textEncoder: component('text_encoder/model.onnx', 49408 * 768 * 4), vaeDecoder: component('vae_decoder/model.onnx', 512 * 512 * 9 * 4),
  files: [
    { path: 'unet/weights-00.bin', bytes: 1_900_000_000, sha256: '' },
    { path: 'unet/weights-01.bin', bytes: 1_538_000_000, sha256: '' },
    { path: 'text_encoder/model.onnx', bytes: 492_000_000, sha256: '' },
    { path: 'vae_decoder/model.onnx', bytes: 198_000_000, sha256: '' },
  ],
} as unknown as PreparedManifest;

describe('checkFit', () => {
  it('lets SD1.5 fp32 onto a WebGPU adapter with 1 GiB buffers', () => {
    const report = checkFit(sd15, { backend: 'webgpu', maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 });
    expect(report).toMatchObject({ fits: true, problems: [], totalBytes: 4_128_000_000 });
  });

  it('refuses SD1.5 fp32 on WASM (4 GiB memory) with the numbers', () => {
    const report = checkFit(sd15, { backend: 'wasm' });
    expect(report.fits).toBe(false);
    expect(report.problems.join()).toMatch(/3\.84 GiB of weights do not fit WebAssembly's 4 GiB/);
  });

  it('refuses a weight larger than the adapter buffer limit, naming both sizes', () => {
    const report = checkFit(sd15, { backend: 'webgpu', maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 128 * 2 ** 20 });
    expect(report.problems).toEqual(['its largest weight is 145 MiB, over this GPU\'s buffer limit of 128 MiB']);
  });

  it('refuses a file over 2 GiB (an unsharded export)', () => {
    const big = { ...sd15, files: [{ path: 'unet/weights.pb', bytes: 3_438_000_000, sha256: '' }] } as PreparedManifest;
    expect(checkFit(big, { backend: 'webgpu' }).problems[0]).toMatch(/unet\/weights\.pb is 3\.20 GiB, over the browser's 2 GiB per file/);
  });
});

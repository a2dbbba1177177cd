// The one engine's WebGPU path on a prepared SD1.5 (the tiny real-exporter fixture, fixtures/sd15, prepared with
// `npm run prepare-model` with the dense DPO UNet as η and the NPO-style δ LoRA), in Node on onnxruntime-web's
// native WebGPU EP over Dawn + SwiftShader: weights merged by our WGSL kernels, the latent loop and the VAE decode
// on the GPU. Its images must equal diffusers' own (the fixture's references, made by the official NPO double-UNet
// loop) within the CPU path's tolerance (sd15.test.ts: images ≥ 40 dB PSNR). What crosses to and from the GPU is
// counted from outside the engine (src/gpu/traffic.ts, which also sees ORT's own calls on the device).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors } from '../lora/safetensors.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { createModelEngine } from '../pipelines/index.ts';
import { prepareFixture, psnr } from '../pipelines/reference-metrics.ts';
import { watchGpuTraffic, type GpuTraffic } from '../gpu/traffic.ts';
import { nodeWebGpuOrt } from '../worker/node-webgpu-ort.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import type { Engine } from './engine.ts';
import { memorySource } from '../model/source/memory.ts';

const FIXTURE = join(import.meta.dirname, '../../fixtures/sd15');
const meta = JSON.parse(readFileSync(join(FIXTURE, 'references.json'), 'utf8'));
const generation = meta.settings.generation;
const references = readSafetensors(new Uint8Array(readFileSync(join(FIXTURE, 'references.safetensors')))).tensors;
const ref = (name: string) => references.get(name)!.data;

const params = (alpha: number, beta = 1): GenerateParams => ({
  prompt: generation.prompt, negativePrompt: generation.negative_prompt, seed: generation.seed, steps: generation.num_inference_steps,
  omega: generation.guidance_scale - 1, alpha, beta, scheduler: 'dpm++2m', width: generation.width, height: generation.height,
});

let engine: Engine;
let device: GPUDevice;
let traffic: GpuTraffic;
let unetBytes: number;
const gpuErrors: string[] = [];

beforeAll(async () => {
  const model = prepareFixture(join(FIXTURE, 'export-diffusers'), ['--eta-unet', join(FIXTURE, 'dpo-unet'), '--delta-lora', join(FIXTURE, 'delta-diffusers.safetensors')]);
  const manifest = model.manifest as PreparedManifest;
  unetBytes = manifest.files.filter((f) => f.path.startsWith('unet/')).reduce((sum, f) => sum + f.bytes, 0);
  const web = await nodeWebGpuOrt({ onUncapturedError: (e) => gpuErrors.push(e.message), baselineWasm: true });
  device = web.device;
  traffic = watchGpuTraffic(device);
  engine = await createModelEngine(web.ort, memorySource(manifest, model.files), { sessionOptions: { executionProviders: [{ name: 'webgpu', device } as never] }, gpu: { device } });
});
afterAll(async () => {
  await engine?.release();
  device?.destroy();
});

describe('prepared SD1.5 on WebGPU (tiny real export, dense η + δ LoRA)', () => {
  // α = 0.5 merges all three terms of θ_neg = θ + α·η + β·δ (at α = 1 the η term vanishes); CPU parity at every α the
  // fixture has is sd15.test.ts's.
  it("NPO with α = 0.5, β = 1 equals diffusers' official NPO weights (≥ 40 dB), on the GPU loop with one read-back per image", async () => {
    const { images } = await engine.generate(params(0.5), ['baseline', 'npo'], {});
    expect(psnr(images.get('npo')!, ref('gen.dpmpp_2m.npo_a0.5.image_float'))).toBeGreaterThan(40);
    expect(psnr(images.get('baseline')!, ref('gen.dpmpp_2m.dpo.image_float'))).toBeGreaterThan(40);
    const stats = engine.stats();
    expect(stats.loop).toBe('gpu');
    expect(stats.readBacks).toBe(2);
    // A dense η touches convolutions and norms: θ_pos and θ_neg samples run as two calls per step (grouped).
    expect(stats.unetCalls).toBe(2 * generation.num_inference_steps);
  });

  it('reads back once per image whatever the step count, counted on the device', async () => {
    // After the test above: the same α and prompt, so no merge and no prompt encoding; a new seed draws its noise.
    const counted = async (steps: number, seed: number) => {
      traffic.reset();
      await engine.generate({ ...params(0.5), steps, seed }, ['baseline', 'npo'], {});
      return traffic.readBacks;
    };
    const [one, three] = [await counted(1, 2), await counted(3, 3)];
    expect(one).toBe(2);
    expect(three).toBe(one);
  });

  it('an α or a β move uploads under 5 % of the UNet\'s bytes beyond what the same generation uploads anyway', async () => {
    // ORT itself uploads per run (its kernels' uniforms: about 1.9 MB per UNet call of this fixture, whatever the
    // weights), so what a move costs is measured as the difference to the same generation without the move.
    const uploads = async (p: GenerateParams) => {
      traffic.reset();
      await engine.generate(p, ['npo'], {});
      return traffic.uploadBytes;
    };
    const start = { ...params(0.5), steps: 1 };
    await uploads(start);
    const again = await uploads(start);
    for (const change of [{ alpha: 0.7 }, { alpha: 0.7, beta: 0.5 }]) {
      const merges = engine.stats().merge!.merges;
      const moved = await uploads({ ...start, ...change });
      expect(engine.stats().merge!.merges).toBe(merges + 1);
      expect((moved - again) / unetBytes, JSON.stringify(change)).toBeLessThan(0.05);
      await uploads(start);
    }
    // A new seed uploads its noise and nothing else.
    expect((await uploads({ ...start, seed: 99 })) - again).toBeLessThan(0.01 * unetBytes);
  });

  it('holds the same GPU bytes after α 1 → 1.5 → 1 → 1.5 (no θ_neg left behind)', async () => {
    const at = async (alpha: number) => {
      await engine.generate({ ...params(alpha), steps: 1 }, ['npo'], {});
      return { engine: engine.stats().liveBufferBytes, device: traffic.liveBytes };
    };
    await at(1);
    const first = await at(1.5);
    await at(1);
    expect(await at(1.5)).toEqual(first);
  });

  it('saw no GPU validation error', () => expect(gpuErrors).toEqual([]));
});

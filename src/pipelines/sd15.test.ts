// The SD1.5 pipeline against diffusers itself: the tiny real-exporter fixture (fixtures/sd15, made by
// scripts/fixtures/make_sd15_fixture.py with diffusers' own ONNX export and the official NPO double-UNet pipeline)
// prepared with `npm run prepare-model`, then sampled here on onnxruntime-node. Tolerances (issue 10): final latents
// within 1e-3 relative L2 of diffusers' PyTorch pipeline, decoded images ≥ 40 dB PSNR.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readSafetensors } from '../lora/safetensors.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import type { GenerateParams, ImageKind } from '../worker/protocol.ts';
import { createModelEngine, promptTokenizer, type Engine } from './index.ts';
import { createComponentSession } from './onnx-component.ts';
import type { ModelDirectory } from './read-directory.ts';
import { prepareFixture, psnr, relL2 } from './reference-metrics.ts';
import { memorySource } from '../model/source/memory.ts';

const FIXTURE = join(import.meta.dirname, '../../fixtures/sd15');
const meta = JSON.parse(readFileSync(join(FIXTURE, 'references.json'), 'utf8'));
const generation = meta.settings.generation;
const references = readSafetensors(new Uint8Array(readFileSync(join(FIXTURE, 'references.safetensors')))).tensors;
const ref = (name: string) => {
  const tensor = references.get(name);
  if (!tensor) throw new Error(`references.safetensors has no ${name}`);
  return tensor.data;
};

/** Our scheduler names for the fixture's diffusers classes. */
const SCHEDULERS = { ddim: 'ddim', dpmpp_2m: 'dpm++2m', euler: 'euler' } as const;

const prepare = (args: string[]) => prepareFixture(join(FIXTURE, 'export-diffusers'), args);

const params = (scheduler: string, alpha = 1, beta = 1): GenerateParams => ({
  prompt: generation.prompt, negativePrompt: generation.negative_prompt, seed: generation.seed, steps: generation.num_inference_steps,
  omega: generation.guidance_scale - 1, alpha, beta, scheduler, width: generation.width, height: generation.height,
});

async function sample(engine: Engine, p: GenerateParams, kind: ImageKind) {
  const { images } = await engine.generate(p, [kind], {});
  return { latents: engine.lastLatents()!.latents.get(kind)!, image: images.get(kind)! };
}

describe('SD1.5 pipeline vs diffusers (tiny real export, onnxruntime-node)', () => {
  let npoModel: ModelDirectory;
  let engine: Engine;
  let base: Engine;
  beforeAll(async () => {
    npoModel = prepare(['--eta-unet', join(FIXTURE, 'dpo-unet'), '--delta-lora', join(FIXTURE, 'delta-diffusers.safetensors')]);
    // The scheduler is the prepared manifest's own: diffusers' from_config of SD1.5's scheduler config, per class.
    const withOffsets = npoModel.manifest as PreparedManifest;
    const plain = { ...withOffsets, offsets: {} };
    engine = await createModelEngine(ort, memorySource(withOffsets, npoModel.files));
    base = await createModelEngine(ort, memorySource(plain, npoModel.files));
  });

  it('tokenizes like transformers\' CLIPTokenizer (with ftfy), including a prompt over 77 tokens', () => {
    const prompts = meta.tokenizer.prompts as { prompt: string; input_ids: number[] }[];
    expect(prompts.length).toBeGreaterThan(5);
    for (const { prompt, input_ids: ids } of prompts) expect(engine.tokens(prompt).ids, prompt).toEqual(ids);
  });

  it('encodes prompts like the PyTorch CLIP text encoder (max abs 1e-4)', async () => {
    const manifest = npoModel.manifest as PreparedManifest;
    const session = await createComponentSession(ort, manifest.textEncoder, npoModel.files);
    const tokenizer = promptTokenizer(manifest, npoModel.files);
    const expected = ref('text.last_hidden_state');
    const size = expected.length / meta.settings.text.prompts.length;
    for (const [i, prompt] of (meta.settings.text.prompts as string[]).entries()) {
      const ids = tokenizer.encode(prompt).ids;
      const out = await session.run({ input_ids: new ort.Tensor('int32', ids, [1, ids.length]) });
      const hidden = out.last_hidden_state.data as Float32Array;
      const want = expected.subarray(i * size, (i + 1) * size);
      expect(hidden.reduce((m, v, j) => Math.max(m, Math.abs(v - want[j])), 0), prompt).toBeLessThan(1e-4);
    }
  });

  for (const [theirs, ours] of Object.entries(SCHEDULERS)) {
    it(`${ours}: ordinary CFG on the base UNet equals diffusers' StableDiffusionPipeline`, async () => {
      const { latents, image } = await sample(base, params(ours), 'baseline');
      expect(relL2(latents, ref(`gen.${theirs}.cfg.latents`))).toBeLessThan(1e-3);
      expect(psnr(image, ref(`gen.${theirs}.cfg.image_float`))).toBeGreaterThan(40);
    });

    it(`${ours}: the baseline with dense η equals the DPO UNet in diffusers`, async () => {
      const { latents, image } = await sample(engine, params(ours), 'baseline');
      expect(relL2(latents, ref(`gen.${theirs}.dpo.latents`))).toBeLessThan(1e-3);
      expect(psnr(image, ref(`gen.${theirs}.dpo.image_float`))).toBeGreaterThan(40);
    });

    for (const alpha of [1, 0.5]) {
      it(`${ours}: NPO with α = ${alpha}, β = 1 equals the official NPO weights in diffusers' loop`, async () => {
          const { latents, image } = await sample(engine, params(ours, alpha, 1), 'npo');
        expect(relL2(latents, ref(`gen.${theirs}.npo_a${alpha}.latents`))).toBeLessThan(1e-3);
        expect(psnr(image, ref(`gen.${theirs}.npo_a${alpha}.image_float`))).toBeGreaterThan(40);
      });
    }
  }

  it('reads δ in diffusers, PEFT and kohya keys to the same NPO image', async () => {
    const expected = ref('gen.dpmpp_2m.npo_a1.latents');
    for (const format of ['peft', 'kohya', 'diffusers']) {
      engine.useLora('delta', new Uint8Array(readFileSync(join(FIXTURE, `delta-${format}.safetensors`))));
      const { latents } = await sample(engine, params('dpm++2m', 1, 1), 'npo');
      expect(relL2(latents, expected), format).toBeLessThan(1e-3);
    }
  });

  it('stacks several LoRAs on δ with their own scales (Σ sᵢ·ΔWᵢ): 0.5·PEFT + 0.3·kohya + 0.2·diffusers = δ', async () => {
    const part = (format: string, scale: number) => ({ bytes: new Uint8Array(readFileSync(join(FIXTURE, `delta-${format}.safetensors`))), scale });
    engine.useLora('delta', [part('peft', 0.5), part('kohya', 0.3), part('diffusers', 0.2)]);
    try {
      const { latents } = await sample(engine, params('dpm++2m', 1, 1), 'npo');
      expect(relL2(latents, ref('gen.dpmpp_2m.npo_a1.latents'))).toBeLessThan(1e-3);
      engine.useLora('delta', [part('peft', 0.5), part('kohya', 0.3)]); // a stack that sums to 0.8·δ is another image
      const { latents: short } = await sample(engine, params('dpm++2m', 1, 1), 'npo');
      expect(relL2(short, ref('gen.dpmpp_2m.npo_a1.latents'))).toBeGreaterThan(1e-3);
    } finally {
      engine.useLora('delta', undefined);
    }
  });

  // Attention at 256² is split into query chunks (src/onnx/passes/chunk-attention.ts; its test compares the graphs'
  // outputs); the engine makes a session per attention plan and goes back to the whole one at 64².
  it('generates at a size whose attention is chunked, and refuses a size whose activations cannot fit, losing nothing', async () => {
    const at = (size: number): GenerateParams => ({ ...params('dpm++2m', 0.5), steps: 1, width: size, height: size });
    const first = await engine.generate(at(64), ['npo'], {});
    const chunked = await engine.generate(at(256), ['npo'], {});
    expect(chunked.images.get('npo')!.length).toBe(3 * 256 * 256);
    expect(chunked.images.get('npo')!.every(Number.isFinite)).toBe(true);
    const again = await engine.generate(at(64), ['npo'], {});
    expect(again.images.get('npo')).toEqual(first.images.get('npo'));

    // 200 MiB left for activations: 64² needs 66 MiB, 512² 262 MiB (at 4 samples per call, chunks of ≤ 64 MiB).
    const limited = await createModelEngine(ort, memorySource(npoModel.manifest, npoModel.files), { activationLimits: { memoryBytes: 200 * 2 ** 20 } });
    try {
      await expect(limited.generate(at(512), ['npo'], {})).rejects.toThrow(/at 512×512 the UNet's activations need about 0\.2\d GiB beside its weights; this backend has 0\.20 GiB left for them/);
      expect((await limited.generate(at(64), ['npo'], {})).images.get('npo')).toEqual(first.images.get('npo'));
    } finally {
      await limited.release();
    }
  });
});

// The SDXL pipeline against diffusers itself: the tiny SDXL fixture (fixtures/sdxl, made by
// scripts/fixtures/make_sdxl_fixture.py: optimum v1.20's SDXL export, references from diffusers'
// StableDiffusionXLPipeline and the official gen_xl.py NPO recipe) prepared with `npm run prepare-model`, then run
// here on onnxruntime-node. Tolerances (issue 16): conditioning tensors within 1e-4 relative L2 (float32 encoders,
// ORT vs PyTorch), final latents within 1e-3 relative L2, decoded images ≥ 40 dB PSNR.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { assembleSdxlExport, SDXL_FIXTURE } from '../../scripts/fixtures/sdxl-export.ts';
import { readSafetensors } from '../lora/safetensors.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import type { GenerateParams, ImageKind } from '../worker/protocol.ts';
import { createModelEngine, promptTokenizer, type Engine } from './index.ts';
import type { ModelDirectory } from './read-directory.ts';
import { prepareFixture, psnr, relL2 } from './reference-metrics.ts';
import { addTimeIds, concatHidden, sdxlConditioner, zeroedNegative } from './sdxl.ts';
import { memorySource } from '../model/source/memory.ts';

const references = readSafetensors(new Uint8Array(readFileSync(join(SDXL_FIXTURE, 'references.safetensors')))).tensors;
const meta = JSON.parse(readFileSync(join(SDXL_FIXTURE, 'references.json'), 'utf8'));
const generation = meta.settings.generation;
const ref = (name: string) => {
  const t = references.get(name);
  if (!t) throw new Error(`references.safetensors has no ${name}`);
  return t.data;
};

const SCHEDULERS = { euler: 'euler', dpmpp_2m: 'dpm++2m' } as const;

const prepare = (args: string[]) => prepareFixture(assembleSdxlExport(), args);

const params = (scheduler: string, alpha = 1, beta = 1, negative?: string): GenerateParams => ({
  prompt: generation.prompt, negativePrompt: negative ?? '', negativePromptGiven: negative !== undefined, seed: generation.seed,
  steps: generation.num_inference_steps, omega: generation.guidance_scale - 1, alpha, beta, scheduler, width: generation.width, height: generation.height,
});

async function sample(engine: Engine, p: GenerateParams, kind: ImageKind) {
  const { images } = await engine.generate(p, [kind], {});
  return { latents: engine.lastLatents()!.latents.get(kind)!, image: images.get(kind)! };
}

describe('SDXL conditioning (pure parts)', () => {
  it('time ids are original size, crop (0, 0), target size, as diffusers\' _get_add_time_ids', () => {
    expect(Array.from(addTimeIds(64, 96))).toEqual([64, 96, 0, 0, 64, 96]);
  });

  it('concatenates the two hidden states per token', () => {
    const out = concatHidden(Float32Array.of(1, 2, 3, 4), 2, Float32Array.of(5, 6, 7, 8, 9, 10), 3, 2);
    expect(Array.from(out)).toEqual([1, 2, 5, 6, 7, 3, 4, 8, 9, 10]);
    expect(() => concatHidden(new Float32Array(3), 2, new Float32Array(6), 3, 2)).toThrow(/do not match/);
  });

  it('zeroes the negative only when none is given and the model says force_zeros_for_empty_prompt', () => {
    const on = { forceZerosForEmptyPrompt: true };
    expect(zeroedNegative({ negativePrompt: '' }, on)).toBe(true);
    expect(zeroedNegative({ negativePrompt: '', negativePromptGiven: true }, on)).toBe(false);
    expect(zeroedNegative({ negativePrompt: 'blurry' }, on)).toBe(false);
    expect(zeroedNegative({ negativePrompt: '' }, { forceZerosForEmptyPrompt: false })).toBe(false);
  });
});

describe('SDXL pipeline vs diffusers (tiny optimum export, onnxruntime-node)', () => {
  let model: ModelDirectory;
  let manifest: PreparedManifest;
  let engine: Engine;
  let base: Engine;
  beforeAll(async () => {
    model = prepare(['--eta-unet', join(SDXL_FIXTURE, 'dpo-unet'), '--delta-lora', join(SDXL_FIXTURE, 'delta-diffusers.safetensors')]);
    manifest = model.manifest as PreparedManifest;
    engine = await createModelEngine(ort, memorySource(manifest, model.files));
    base = await createModelEngine(ort, memorySource({ ...manifest, offsets: {} }, model.files));
  });

  it('prepares an sdxl manifest: second encoder and tokenizer, added conditions, negative-prompt rule, default size', () => {
    expect(manifest.kind).toBe('sdxl');
    const x = manifest.sdxl!;
    expect(x.textEncoder2.file).toBe('text_encoder_2/model.onnx');
    expect(x.tokenizer2.dir).toBe('tokenizer_2');
    expect(x.hiddenStates).toEqual(['hidden_states.2', 'hidden_states.2']); // 3-layer encoders: hidden_states[-2]
    expect(x.pooled).toBe('text_embeds');
    const shape = (name: string) => meta.tensors[name].shape as number[];
    expect(x.hiddenDims[0] + x.hiddenDims[1]).toBe(shape('cond.prompt_embeds')[2]);
    expect(manifest.context).toEqual({ length: 77, dim: shape('cond.prompt_embeds')[2] });
    expect(x.textEmbedsDim).toBe(shape('cond.pooled_prompt_embeds')[1]);
    expect(x.timeIdsDim).toBe(6);
    expect(x.forceZerosForEmptyPrompt).toBe(true);
    expect(manifest.unet.inputs).toMatchObject({ text_embeds: 'float32', time_ids: 'float32' });
    expect([manifest.defaults.width, manifest.defaults.height]).toEqual([generation.width, generation.height]);
    expect(manifest.latent.scalingFactor).toBeCloseTo(generation.scaling_factor, 6);
  });

  it('tokenizes with both tokenizers like transformers (the second pads with "!")', () => {
    for (const { prompt, input_ids: ids, input_ids_2: ids2 } of meta.tokens) {
      const t = engine.tokens(prompt);
      expect(t.ids).toEqual(ids);
      expect(t.ids2).toEqual(ids2);
    }
    expect(meta.tokens[0].input_ids_2.at(-1)).toBe(0); // "!" pads the second
  });

  it('encodes the prompt as diffusers\' encode_prompt: context, pooled text_embeds, the zeroed and the encoded empty negative', async () => {
    const tokenizers = [promptTokenizer(manifest, model.files), promptTokenizer(manifest, model.files, manifest.sdxl!.tokenizer2.dir)] as const;
    const c = await sdxlConditioner(ort, manifest, model.files, [...tokenizers]);
    const positive = await c.embeds(generation.prompt);
    expect(relL2(positive.context, ref('cond.prompt_embeds'))).toBeLessThan(1e-4);
    expect(relL2(positive.pooled, ref('cond.pooled_prompt_embeds'))).toBeLessThan(1e-4);
    const empty = await c.embeds('');
    expect(relL2(empty.context, ref('cond.negative_prompt_embeds.empty'))).toBeLessThan(1e-4);
    expect(relL2(empty.pooled, ref('cond.negative_pooled_prompt_embeds.empty'))).toBeLessThan(1e-4);

    const { length, dim } = manifest.context;
    const e = manifest.sdxl!.textEmbedsDim;
    const packed = await c.encode(params('euler'));
    const feeds = c.unetFeeds(new Float32Array([...packed.negative, ...packed.positive]), 2);
    expect(feeds.encoder_hidden_states.dims).toEqual([2, length, dim]);
    const ctx = feeds.encoder_hidden_states.data as Float32Array;
    expect(ctx.subarray(0, length * dim).every((v) => v === 0)).toBe(true); // no negative prompt: zeros
    expect(relL2(ctx.subarray(length * dim), ref('cond.prompt_embeds'))).toBeLessThan(1e-4);
    const pooled = feeds.text_embeds.data as Float32Array;
    expect(pooled.subarray(0, e).every((v) => v === 0)).toBe(true);
    expect(Array.from(feeds.time_ids.data as Float32Array)).toEqual([...ref('cond.add_time_ids'), ...ref('cond.add_time_ids')]);

    const explicit = await c.encode(params('euler', 1, 1, ''));
    expect(relL2(explicit.negative.subarray(0, length * dim), ref('cond.negative_prompt_embeds.empty'))).toBeLessThan(1e-4);
    await c.release();
  });

  for (const [theirs, ours] of Object.entries(SCHEDULERS)) {
    it(`${ours}: ordinary CFG (no negative prompt: zeros) equals diffusers' StableDiffusionXLPipeline`, async () => {
      const { latents, image } = await sample(base, params(ours), 'baseline');
      expect(relL2(latents, ref(`gen.${theirs}.cfg.latents`))).toBeLessThan(1e-3);
      expect(psnr(image, ref(`gen.${theirs}.cfg.image_float`))).toBeGreaterThan(40);
    });

    it(`${ours}: ordinary CFG with negative_prompt="" (encoded) equals diffusers`, async () => {
      const { latents, image } = await sample(base, params(ours, 1, 1, ''), 'baseline');
      expect(relL2(latents, ref(`gen.${theirs}.cfg_empty.latents`))).toBeLessThan(1e-3);
      expect(relL2(latents, ref(`gen.${theirs}.cfg.latents`))).toBeGreaterThan(1e-2); // the two rules really differ
      expect(psnr(image, ref(`gen.${theirs}.cfg_empty.image_float`))).toBeGreaterThan(40);
    });

    it(`${ours}: the baseline with dense η equals the DPO UNet in diffusers`, async () => {
      const { latents, image } = await sample(engine, params(ours), 'baseline');
      expect(relL2(latents, ref(`gen.${theirs}.dpo.latents`))).toBeLessThan(1e-3);
      expect(psnr(image, ref(`gen.${theirs}.dpo.image_float`))).toBeGreaterThan(40);
    });

    for (const alpha of [1, 0.5]) {
      it(`${ours}: NPO with α = ${alpha}, β = 1 equals gen_xl.py's negative UNet in the double-UNet loop`, async () => {
        const { latents, image } = await sample(engine, params(ours, alpha, 1), 'npo');
        expect(relL2(latents, ref(`gen.${theirs}.npo_a${alpha}.latents`))).toBeLessThan(1e-3);
        expect(psnr(image, ref(`gen.${theirs}.npo_a${alpha}.image_float`))).toBeGreaterThan(40);
      });
    }
  }

  it('reads δ with kohya SGM keys (lora_unet_input_blocks_4_1_…) to the same NPO image as diffusers keys', async () => {
    const bytes = new Uint8Array(readFileSync(join(SDXL_FIXTURE, 'delta-kohya-sgm.safetensors')));
    expect(engine.useLora('delta', bytes).skipped).toBe(0);
    const { latents } = await sample(engine, params('dpm++2m', 1, 1), 'npo');
    expect(relL2(latents, ref('gen.dpmpp_2m.npo_a1.latents'))).toBeLessThan(1e-3);
  });
});

// Training on a prepared SDXL model (the tiny optimum-exported fixture through `npm run prepare-model`), on
// onnxruntime-node, against diffusers' SDXL training (scripts/fixtures/make_sdxl_train_reference.py →
// fixtures/sdxl/train-reference.safetensors):
//   - latents through the VAE encoder's posterior with SDXL's scaling factor 0.13025;
//   - ᾱ_t of the model's scheduler = the DDPMScheduler of train_diffusion_dpo_sdxl.py;
//   - the trainer's own SDXL conditioning (both text encoders through the SDXL pipeline's encode_prompt, pooled
//     text_embeds, time_ids from each pair's source image) and its β_dpo scale (×0.5) give PyTorch's model_diff,
//     ref_diff and loss for both reference pairs (default time ids, and an 80×96 original cropped at (8, 16));
//   - a few AdamW steps on a separable toy pair set lower the loss; trainLora end to end gives a δ with all 136
//     attention projections, in diffusers keys the SDXL pipeline loads and in kohya keys named as the fixture's
//     kohya SDXL file names them (SGM blocks).
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assembleSdxlExport, SDXL_FIXTURE } from '../../scripts/fixtures/sdxl-export.ts';
import { createGenerator, type NoiseGenerator } from '../diffusion/noise/index.ts';
import { parseLora } from '../lora/formats.ts';
import { readSafetensors } from '../lora/safetensors.ts';
import { serializeLora } from '../lora/serialize.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { createModelEngine } from '../pipelines/index.ts';
import type { ModelDirectory } from '../pipelines/read-directory.ts';
import { prepareFixture, relL2 } from '../pipelines/reference-metrics.ts';
import { readFileSync } from 'node:fs';
import { readModel } from '../onnx/model-io.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import type { Random } from './random.ts';
import { createLatentEncoder } from './sd-latents.ts';
import { defaultBeta, dpoBetaScale } from './dpo-beta.ts';
import { createDpoTrainer, trainingAlphas, trainLora } from './train-lora.ts';
import { readTrainReference } from './train-reference.ts';
import { fixedDrawLosses, toyPairs } from './toy-training.ts';
import { encodePairs, type ImageSource } from './pairs.ts';
import { planTrainingMemory } from './memory-plan.ts';
import { runTraining } from '../worker/training.ts';
import { QUICK_START } from './quick-start.ts';
import { memorySource } from '../model/source/memory.ts';

const SIZE = { width: 64, height: 64 };
const fast = { logSeverityLevel: 3 as const, graphOptimizationLevel: 'basic' as const, ...QUICK_START }; // 12 s to start, not 86 (quick-start.ts)
const ref = readTrainReference(join(SDXL_FIXTURE, 'train-reference.safetensors'));
const settings = ref.meta('settings');
const references = JSON.parse(readFileSync(join(SDXL_FIXTURE, 'references.json'), 'utf8'));

describe('DPO / NPO training on a prepared SDXL model (tiny optimum export, onnxruntime-node)', () => {
  let model: ModelDirectory;
  let manifest: PreparedManifest;

  beforeAll(() => {
    model = prepareFixture(assembleSdxlExport(), []);
    manifest = model.manifest as PreparedManifest;
  });

  it('defaults to the released SDXL δ\'s β_dpo 2000, halved as the SDXL scripts do', () => {
    expect(manifest.kind).toBe('sdxl');
    expect(defaultBeta(manifest.kind)).toBe(2000);
    expect(dpoBetaScale(manifest.kind)).toBe(0.5);
  });

  it("samples latents as diffusers' latent_dist.sample(generator) × 0.13025 (SDXL's VAE in float32)", async () => {
    expect(manifest.latent.scalingFactor).toBe(0.13025);
    const images = ref.f32('vae.images');
    const plane = 3 * SIZE.width * SIZE.height;
    const encoder = await createLatentEncoder(ort, manifest, model.files, createGenerator(settings.vae.seed), SIZE, fast);
    const latents = [await encoder.encode(images.slice(0, plane)), await encoder.encode(images.slice(plane))];
    await encoder.release();
    expect(relL2(new Float32Array([...latents[0], ...latents[1]]), ref.f32('vae.latents'))).toBeLessThan(1e-5);
  });

  it("ᾱ_t of the prepared scheduler equals train_diffusion_dpo_sdxl.py's DDPMScheduler.alphas_cumprod", () => {
    const alphas = trainingAlphas(manifest);
    const t = Array.from(ref.i64('inputs.timesteps'), Number);
    const expected = ref.f32('inputs.alpha_bar');
    t.forEach((step, i) => expect(Math.abs(alphas[step] - expected[i]) / expected[i]).toBeLessThan(1e-6));
  });

  it("the trainer's conditioning (both encoders, pooled embeds, per-pair time ids) and β scale give PyTorch's diffs and loss", async () => {
    // Pair 0 of the reference: the generation prompt, time ids [64, 64, 0, 0, 64, 64] (what the trainer uses at 64² for
    // a pair with no source). Pair 1: the prompt "", time ids [80, 96, 8, 16, 64, 64] (an 80×96 original cropped at
    // (8, 16)), which the trainer takes from the pair's "source".
    expect(settings.time_ids).toEqual([[64, 64, 0, 0, 64, 64], [80, 96, 8, 16, 64, 64]]);
    const prompts: string[] = [references.settings.generation.prompt, ''];
    const sources: (ImageSource | undefined)[] = [undefined, { height: 80, width: 96, cropTop: 8, cropLeft: 16 }];
    const trainer = await createDpoTrainer({ ort, model: { manifest, files: model.files }, prompts, rank: settings.rank, resolution: SIZE, sessionOptions: fast });
    try {
      for (const [name, value] of trainer.params) value.set(ref.f32(`lora.${name}`));
      const latent = 4 * 8 * 8;
      for (const pair of [0, 1]) {
        const slice = (name: string) => ref.f32(name).slice(pair * latent, (pair + 1) * latent);
        // The draw the reference made: its ε and t for this pair.
        const noise: NoiseGenerator = { seed: 0, randn: (n) => (n === latent ? slice('inputs.noise') : new Float32Array(n).fill(NaN)) };
        const random = { int: () => Number(ref.i64('inputs.timesteps')[pair]) } as unknown as Random;
        for (const objective of ['dpo', 'npo'] as const) {
          const [w, l] = objective === 'npo' ? ['inputs.x_l', 'inputs.x_w'] : ['inputs.x_w', 'inputs.x_l'];
          const out = await trainer.run([{ prompt: prompts[pair], winner: slice(w), loser: slice(l), source: sources[pair] }], { noise, random }, settings.beta_dpo);
          const md = ref.f32(`${objective}.model_diff`)[pair];
          const rd = ref.f32(`${objective}.ref_diff`)[pair];
          expect(Math.abs(out.modelDiff[0] - md) / Math.abs(md)).toBeLessThan(1e-4);
          expect(Math.abs(out.refDiff[0] - rd) / Math.abs(rd)).toBeLessThan(1e-4);
          const loss = Math.log1p(Math.exp(0.5 * settings.beta_dpo * (md - rd))); // −logsigmoid(−0.5·β_dpo·(md − rd))
          expect(Math.abs(out.loss - loss) / loss).toBeLessThan(1e-4);
        }
      }
      // The source reaches the UNet: pair 1 with the default time ids instead gives another model_diff.
      const pair1 = { prompt: '', winner: ref.f32('inputs.x_w').slice(latent), loser: ref.f32('inputs.x_l').slice(latent) };
      const draw = { noise: { seed: 0, randn: () => ref.f32('inputs.noise').slice(latent) } as NoiseGenerator, random: { int: () => Number(ref.i64('inputs.timesteps')[1]) } as unknown as Random };
      const uncropped = await trainer.run([pair1], draw, settings.beta_dpo);
      const md1 = ref.f32('dpo.model_diff')[1];
      expect(Math.abs(uncropped.modelDiff[0] - md1) / Math.abs(md1)).toBeGreaterThan(1e-3);
    } finally {
      await trainer.release();
    }
  }, 600_000);

  it('a few AdamW steps on a fixed draw of a separable toy pair set lower the DPO loss', async () => {
    const losses = await fixedDrawLosses(ort, manifest, model.files, SIZE.width, 2000, 6, fast);
    expect(losses[0]).toBeCloseTo(Math.LN2, 6); // B = 0: policy = reference
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
    expect(losses.at(-1)!).toBeLessThan(0.8 * Math.LN2);
  }, 600_000);

  it('trainLora (NPO, default β) gives a δ on all 136 projections: diffusers keys load into the SDXL pipeline, kohya-sgm keys are kohya\'s SDXL names', async () => {
    const { lora, history } = await trainLora({ ort, model: { manifest, files: model.files }, pairs: toyPairs(4, SIZE.width), reverse: true, rank: 4, steps: 3, batch: 2, lr: 1e-3, seed: 5, resolution: SIZE, sessionOptions: fast });
    expect(history).toHaveLength(3);
    expect(history[0].loss).toBeCloseTo(Math.LN2, 6);
    expect(lora.metadata.beta_dpo).toBe('2000');
    expect(lora.entries.size).toBe(136);
    const diffusers = serializeLora(lora, 'diffusers');
    const engine = await createModelEngine(ort, memorySource(manifest, model.files));
    expect(engine.useLora('delta', diffusers).skipped).toBe(0);
    // kohya's SDXL key for every module is the one the fixture's kohya-sgm file (made by make_sdxl_fixture.py) uses
    const kohya = readSafetensors(serializeLora(lora, 'kohya-sgm'));
    const fixtureKeys = new Set(readSafetensors(new Uint8Array(readFileSync(join(SDXL_FIXTURE, 'delta-kohya-sgm.safetensors')))).tensors.keys());
    const keys = [...kohya.tensors.keys()];
    expect(keys).toHaveLength(3 * 136);
    expect(keys.filter((k) => !fixtureKeys.has(k))).toEqual([]);
    expect(keys).toContain('lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight');
    const targets = [...lora.entries].map(([modulePath, e]) => ({ modulePath, inFeatures: e.inFeatures, outFeatures: e.outFeatures }));
    for (const format of ['diffusers', 'peft', 'kohya', 'kohya-sgm'] as const) {
      const back = parseLora(serializeLora(lora, format), targets);
      expect(back.entries.size, format).toBe(136);
      for (const [path, e] of lora.entries) {
        const b = back.entries.get(path)!;
        expect(relL2(b.up.map((v) => v * b.scale), e.up.map((v) => v * e.scale)), `${format} ${path}`).toBeLessThan(1e-6);
        expect(relL2(b.down, e.down)).toBeLessThan(1e-6);
      }
    }
  }, 600_000);

  it("plans its memory with the added conditions, and the worker's runTraining refuses a plan over the backend's limits with its numbers", async () => {
    const unet = readModel(model.files.get(manifest.unet.file)!);
    const plan = planTrainingMemory(unet, { batch: 2, latentDims: [4, 8, 8], contextDims: [77, 20], rank: 4 });
    expect(plan.loraParams).toBe(findLoraSites(unet).reduce((sum, site) => sum + 4 * (site.inFeatures + site.outFeatures), 0)); // rank 4
    expect(plan.activationsBytes).toBeGreaterThan(0);
    const pairsJson = JSON.stringify(encodePairs(toyPairs(2, SIZE.width), SIZE.width, SIZE.height));
    const options = { reverse: true, rank: 2, steps: 1, beta: 2000, lr: 1e-3, batch: 2, seed: 1 };
    const job = { ort, manifest, files: model.files, sessionOptions: fast, pairsJson, options, signal: new AbortController().signal, onStep: () => undefined };
    await expect(runTraining({ ...job, limits: { memoryBytes: 2 ** 20 } }))
      .rejects.toThrow(/^training .* at 64×64, batch 2, rank 2 needs about \d+ MiB \(weights \d+ MiB \+ activations \d+ MiB .*this backend has 1 MiB/);
  });
});


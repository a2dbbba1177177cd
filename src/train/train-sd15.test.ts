// Training on a prepared SD1.5 model (the tiny real-exporter fixture through `npm run prepare-model`), on
// onnxruntime-node: latents through the VAE encoder's posterior sampled with our generator (= diffusers'
// latent_dist.sample(generator), fixtures/sd15/train-reference.safetensors), ᾱ_t from the model's scheduler (= the
// DDPMScheduler of train_diffusion_dpo.py), and a few DPO steps on a separable toy pair set that lower the loss,
// giving a δ in diffusers keys that the SD1.5 pipeline loads back.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createGenerator } from '../diffusion/noise/index.ts';
import { parseLora } from '../lora/formats.ts';
import { serializeLora } from '../lora/serialize.ts';
import { readSafetensors } from '../lora/safetensors.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { createModelEngine } from '../pipelines/index.ts';
import { readModelDirectory, type ModelDirectory } from '../pipelines/read-directory.ts';
import { createLatentEncoder } from './sd-latents.ts';
import { trainingAlphas, trainLora } from './train-lora.ts';
import { encodePairs } from './pairs.ts';
import { runTraining } from '../worker/training.ts';
import { readModel } from '../onnx/model-io.ts';
import { planPreparedTraining, planTrainingMemory } from './memory-plan.ts';
import { fixedDrawLosses, toyPairs } from './toy-training.ts';
import { readTrainReference } from './train-reference.ts';
import { relL2 } from '../pipelines/reference-metrics.ts';
import { QUICK_START } from './quick-start.ts';
import { FLOAT16_WEIGHTS_FILE } from '../onnx/passes/float16-weights.ts';
import { memorySource } from '../model/source/memory.ts';

const FIXTURE = join(import.meta.dirname, '../../fixtures/sd15');
const SIZE = { width: 64, height: 64 }; // the fixture's image size (its manifest defaults to SD1.5's 512)
const quiet = { logSeverityLevel: 3 as const };
// full optimisation of the training graph takes ~4× longer to set up; the parallel executor starts it 4× sooner (quick-start.ts)
const fast = { ...quiet, graphOptimizationLevel: 'basic' as const, ...QUICK_START };

describe('DPO training on a prepared SD1.5 model (tiny real export, onnxruntime-node)', () => {
  const ref = readTrainReference(join(FIXTURE, 'train-reference.safetensors'));
  const settings = ref.meta('settings');
  let model: ModelDirectory;
  let manifest: PreparedManifest;

  beforeAll(() => {
    const out = mkdtempSync(join(tmpdir(), 'sd15-train-'));
    execFileSync('npx', ['tsx', 'src/cli/prepare-model.ts', '--onnx', join(FIXTURE, 'export-diffusers'), '--out', out], { stdio: 'pipe' });
    model = readModelDirectory(out);
    manifest = model.manifest as PreparedManifest;
  });

  it("samples latents as diffusers' latent_dist.sample(generator) × scaling factor, from the graph's own posterior", async () => {
    const images = ref.f32('vae.images');
    const plane = 3 * SIZE.width * SIZE.height;
    const encoder = await createLatentEncoder(ort, manifest, model.files, createGenerator(settings.vae.seed), SIZE, quiet);
    const [first, second] = [images.slice(0, plane), images.slice(plane)];
    const latents = [await encoder.encode(first), await encoder.encode(second)];
    expect(await encoder.encode(first)).toBe(latents[0]); // cached: no second draw
    // pairs keep everything but their images (the prompt, SDXL's source image) when their latents replace them
    const source = { width: 96, height: 80, cropTop: 8, cropLeft: 16 };
    const [pair] = await encoder.encodePairs([{ prompt: 'a red square', winner: first, loser: second, source }]);
    expect(pair).toEqual({ prompt: 'a red square', winner: latents[0], loser: latents[1], source });
    await encoder.release();
    const joined = new Float32Array([...latents[0], ...latents[1]]);
    expect(relL2(joined, ref.f32('vae.latents'))).toBeLessThan(1e-5);
  });

  it("ᾱ_t of the prepared scheduler equals train_diffusion_dpo.py's DDPMScheduler.alphas_cumprod", () => {
    const alphas = trainingAlphas(manifest);
    const t = Array.from(ref.i64('inputs.timesteps'), Number);
    const expected = ref.f32('inputs.alpha_bar');
    t.forEach((step, i) => expect(Math.abs(alphas[step] - expected[i]) / expected[i]).toBeLessThan(1e-6));
  });

  it('a few AdamW steps on a fixed draw (noise, timesteps) of a separable toy pair set lower the DPO loss', async () => {
    // The objective fixed (same ε and t every step) so that "lower" is a property of the gradient, not of the draw.
    const losses = await fixedDrawLosses(ort, manifest, model.files, SIZE.width, 500, 6, fast);
    expect(losses[0]).toBeCloseTo(Math.LN2, 6); // B = 0: policy = reference
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
    expect(losses.at(-1)!).toBeLessThan(0.6 * Math.LN2); // measured 0.52·ln 2 after 5 updates
  });

  it("with fp16 frozen weights (weights: 'fp16'), the same steps start at ln 2 and lower the loss alike", async () => {
    const losses = await fixedDrawLosses(ort, manifest, model.files, SIZE.width, 500, 6, fast, 'fp16');
    expect(losses[0]).toBeCloseTo(Math.LN2, 6);
    for (let i = 1; i < losses.length; i++) expect(losses[i]).toBeLessThan(losses[i - 1]);
    expect(losses.at(-1)!).toBeLessThan(0.6 * Math.LN2);
  });

  it('trainLora runs on it end to end (VAE latents, random t), and its δ in diffusers keys loads into the SD1.5 pipeline', async () => {
    const settings = { ort, model: { manifest, files: model.files }, rank: 4, steps: 4, batch: 2, beta: 500, lr: 1e-3, seed: 5, resolution: SIZE, sessionOptions: fast };
    const { lora, history } = await trainLora({ ...settings, pairs: toyPairs(4, SIZE.width) });
    expect(history).toHaveLength(settings.steps);
    expect(history[0].loss).toBeCloseTo(Math.LN2, 6);
    expect(history.every((r) => Number.isFinite(r.loss) && r.gradNorm > 0)).toBe(true);
    const bytes = serializeLora(lora, 'diffusers');
    const keys = [...readSafetensors(bytes).tensors.keys()];
    expect(keys).toHaveLength(2 * 32);
    expect(keys).toContain('unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight');
    expect(keys).toContain('unet.up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_out.0.lora.up.weight');
    const engine = await createModelEngine(ort, memorySource(manifest, model.files));
    expect(engine.useLora('delta', bytes).skipped).toBe(0);
    // every key format round-trips to the same ΔW = scale·up·down (alpha 2 of rank 4: kohya stores it, scale 0.5)
    const targets = [...lora.entries].map(([modulePath, e]) => ({ modulePath, inFeatures: e.inFeatures, outFeatures: e.outFeatures }));
    const deltaW = (e: { up: Float32Array; down: Float32Array; rank: number; scale: number; inFeatures: number; outFeatures: number }) =>
      Float32Array.from({ length: e.outFeatures * e.inFeatures }, (_, k) => {
        const [o, i] = [Math.floor(k / e.inFeatures), k % e.inFeatures];
        let v = 0;
        for (let r = 0; r < e.rank; r++) v += e.up[o * e.rank + r] * e.down[r * e.inFeatures + i];
        return e.scale * v;
      });
    const halved = { ...lora, entries: new Map([...lora.entries].map(([k, e]) => [k, { ...e, up: e.up.map((v) => 2 * v), scale: 0.5 }])) };
    for (const format of ['diffusers', 'peft', 'kohya'] as const) {
      const set = format === 'kohya' ? halved : lora;
      const back = parseLora(serializeLora(set, format), targets);
      expect(back.entries.size).toBe(32);
      for (const [path, e] of lora.entries) expect(relL2(deltaW(back.entries.get(path)!), deltaW(e)), `${format} ${path}`).toBeLessThan(1e-6);
    }
  });

  it("trainLora runs the memory plan's own training graph (the same losses as building it again) and refuses one planned for other settings", async () => {
    const settings = { ort, model: { manifest, files: model.files }, pairs: toyPairs(2, SIZE.width), reverse: true, rank: 2, steps: 2, batch: 1, beta: 500, lr: 1e-3, seed: 1, resolution: SIZE, sessionOptions: fast };
    const plan = (rank: number, choice: 'off' | 'blocks') => planPreparedTraining(manifest, model.files.get(manifest.unet.file)!, { ...SIZE, batch: 1, rank }, {}, choice);
    const built = await trainLora(settings);
    // ...and the caller drops the UNet's weight files once the session holds them (npm run train does)
    const files = new Map(model.files);
    const dropped: string[] = [];
    const planned = await trainLora({ ...settings, model: { manifest, files }, graph: plan(2, 'off').built, onUnetWeightsCopied: (paths) => paths.forEach((p) => (dropped.push(p), files.delete(p))) });
    expect(planned.history.map((r) => r.loss)).toEqual(built.history.map((r) => r.loss)); // the same graph: bit for bit
    expect(dropped).toEqual(manifest.unet.externalData);
    expect(files.has(manifest.unet.file) && files.has(manifest.vaeEncoder!.file)).toBe(true);
    await expect(trainLora({ ...settings, graph: plan(4, 'off').built })).rejects.toThrow('the planned training graph was built for other settings than this run\'s: rank 4 instead of 2');
    await expect(trainLora({ ...settings, graph: plan(2, 'blocks').built })).rejects.toThrow('checkpoint "blocks" instead of "off"');
    await expect(trainLora({ ...settings, resolution: { width: 32, height: 32 }, graph: plan(2, 'off').built })).rejects.toThrow('imageDims [4,8,8] instead of [4,4,4]');
  });

  it("the worker's runTraining trains a prepared model from pairs.json, and refuses a plan over the backend's limits with its numbers", async () => {
    const pairsJson = JSON.stringify(encodePairs(toyPairs(2, SIZE.width), SIZE.width, SIZE.height));
    const options = { reverse: true, rank: 2, steps: 2, beta: 500, lr: 1e-3, batch: 2, seed: 1 }; // at the pairs file's own 64×64
    const job = { ort, manifest, files: model.files, sessionOptions: fast, pairsJson, signal: new AbortController().signal, onStep: () => undefined };
    const result = await runTraining({ ...job, options, limits: { memoryBytes: 4 * 2 ** 30 } });
    expect(result.steps).toBe(2);
    expect(readSafetensors(result.lora).tensors.size).toBe(2 * 32);
    await expect(runTraining({ ...job, options, limits: { memoryBytes: 2 ** 20 } }))
      .rejects.toThrow(/^training stable-diffusion-1.5 at 64×64, batch 2, rank 2 needs about \d+ MiB \(weights 1 MiB \+ activations \d+ MiB .*this backend has 1 MiB/);
    // A batch larger than the pair set trains (and so is planned) at the set's size.
    await expect(runTraining({ ...job, options: { ...options, batch: 8 }, limits: { memoryBytes: 2 ** 20 } })).rejects.toThrow(/^training stable-diffusion-1.5 at 64×64, batch 2, rank 2 needs/);
    // Between the plain plan and the checkpointed ones: the worker recomputes activations, says so before the first step, and trains.
    const unet = readModel(model.files.get(manifest.unet.file)!);
    const plain = planTrainingMemory(unet, { batch: 2, rank: 2, latentDims: [4, 8, 8], contextDims: [77, 32] });
    const plans: [string, string][] = [];
    const squeezed = await runTraining({ ...job, options, limits: { memoryBytes: plain.totalBytes - 1 }, onPlan: (mode, summary) => void plans.push([mode, summary]) });
    expect(squeezed.steps).toBe(2);
    expect(plans).toHaveLength(1);
    expect(plans[0][0]).toBe('blocks');
    expect(plans[0][1]).toMatch(/^weights fp32, checkpointing blocks: memory plan \d+\.\d\d GiB \(\d+\.\d\d GiB without; .*\); tried off .*, blocks .*$/);
    await expect(runTraining({ ...job, options: { ...options, resolution: 60 } })).rejects.toThrow('training width 60 must be a positive multiple of the VAE factor 8');
    await expect(runTraining({ ...job, options: { ...options, resolution: 128 } })).rejects.toThrow('pairs file is for 64×64 images; the model works at 128×128');
  });

  it("the worker's runTraining falls back to float32 weights, planned again, when the float16 weights' session cannot be made, and says so", async () => {
    // A device whose ORT refuses the float16 weights' Casts (a GPU announcing shader-f16 that does not deliver, which
    // this machine cannot have): the real onnxruntime-node, with that one failure injected at session creation.
    const refusing = {
      Tensor: ort.Tensor,
      InferenceSession: {
        create: (model: Uint8Array, options?: ort.InferenceSession.SessionOptions) =>
          options?.externalData?.some((e) => typeof e !== 'string' && e.path === FLOAT16_WEIGHTS_FILE)
            ? Promise.reject(new Error('no float16 Cast kernel on this adapter'))
            : ort.InferenceSession.create(model, options),
      },
    } as unknown as typeof ort;
    const pairsJson = JSON.stringify(encodePairs(toyPairs(2, SIZE.width), SIZE.width, SIZE.height));
    const options = { reverse: true, rank: 2, steps: 2, beta: 500, lr: 1e-3, batch: 2, seed: 1 };
    const job = { manifest, files: model.files, sessionOptions: fast, pairsJson, options, limits: { memoryBytes: 4 * 2 ** 30 }, signal: new AbortController().signal, onStep: () => undefined };
    const plans: string[] = [];
    const fellBack = await runTraining({ ...job, ort: refusing, weights: 'fp16', onPlan: (_, summary) => void plans.push(summary) });
    expect(fellBack.warning).toBe('float16 frozen weights failed on this device (no float16 Cast kernel on this adapter), so training ran with float32 weights');
    expect(plans.map((summary) => summary.split(',')[0])).toEqual(['weights fp16', 'weights fp32']);
    const float32 = await runTraining({ ...job, ort });
    expect(fellBack.steps).toBe(2);
    expect(fellBack.lora).toEqual(float32.lora); // the run a float32 device makes, bit for bit
    // Where float16 weights do run (onnxruntime-node's CPU EP), nothing falls back and nothing is said.
    expect((await runTraining({ ...job, ort, weights: 'fp16' })).warning).toBeUndefined();
  });
});

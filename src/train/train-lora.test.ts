// End-to-end DPO / NPO training on the committed embedded model (models/): winners show a red square, losers a
// blue one, same prompt. DPO must drive the loss down from ln 2 and the implicit accuracy up; NPO (reverse) on the
// same file must produce a LoRA that prefers the losers: evaluated on held-out, un-reversed pairs with fixed noise and
// timesteps, the DPO LoRA's implicit accuracy is high and the NPO LoRA's is below chance (its denoising loss on the
// losers dropped relative to the reference). Small: rank 4, batch 2, 10 steps (a few seconds on 2 cores).
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGenerator } from '../diffusion/noise/index.ts';
import { parseLora } from '../lora/formats.ts';
import { serializeLora } from '../lora/serialize.ts';
import type { LoraSet } from '../lora/types.ts';
import { parseManifest } from '../model/manifest.ts';
import type { PreferencePair } from './pairs.ts';
import { createRandom, type Random } from './random.ts';
import { createDpoTrainer, mirrorImage, trainLora, TrainingError, type StepReport } from './train-lora.ts';

const dir = join(import.meta.dirname, '../../models');
const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))]));
const model = { manifest, files };
const S = manifest.unet.config.sampleSize;
const quiet = { logSeverityLevel: 3 as const };
const PROMPT = 'a square';

function squareImage(r: Random, rgb: number[]): Float32Array {
  const plane = S * S;
  const img = new Float32Array(3 * plane).fill(-0.6);
  const [x0, y0, side] = [r.int(S - 12), r.int(S - 12), 12];
  for (let y = y0; y < y0 + side; y++) for (let x = x0; x < x0 + side; x++) for (let c = 0; c < 3; c++) img[c * plane + y * S + x] = rgb[c];
  return img;
}
const redOverBlue = (count: number, seed: number): PreferencePair[] => {
  const r = createRandom(seed);
  return Array.from({ length: count }, () => ({ prompt: PROMPT, winner: squareImage(r, [1, -1, -1]), loser: squareImage(r, [-1, -1, 1]) }));
};

const settings = { ort, model, rank: 4, steps: 10, batch: 2, lr: 1e-4, beta: 2500, seed: 0, sessionOptions: quiet };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Implicit accuracy and mean (model_diff − ref_diff) of a LoRA on un-reversed pairs, fixed ε and t (3 draws). */
async function evaluate(lora: LoraSet, pairs: PreferencePair[]) {
  const trainer = await createDpoTrainer({ ort, model, prompts: [PROMPT], rank: 4, sessionOptions: quiet });
  for (const l of trainer.graph.lora) {
    const e = lora.entries.get(l.site.modulePath)!;
    trainer.params.set(l.a, e.down);
    trainer.params.set(l.b, e.up.map((v) => v * e.scale));
  }
  const draw = { noise: createGenerator(77), random: createRandom(78) };
  const runs = [];
  for (let k = 0; k < 3; k++) runs.push(await trainer.run(pairs, draw, 2500, 1));
  await trainer.release();
  return {
    accuracy: mean(runs.map((r) => r.accuracy)),
    margin: mean(runs.flatMap((r) => [...r.modelDiff].map((m, i) => m - r.refDiff[i]))),
  };
}

describe('trainLora (DPO and NPO on the embedded model)', () => {
  it('DPO lowers the loss and raises implicit accuracy; NPO on the same pairs learns to prefer the losers', async () => {
    const train = redOverBlue(8, 1);
    const heldOut = redOverBlue(8, 2);
    const reports: StepReport[] = [];
    const dpo = await trainLora({ ...settings, pairs: train, onStep: (r) => void reports.push(r) });
    expect(reports.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(reports[0].loss).toBeCloseTo(Math.LN2, 6); // B = 0 at init: policy = reference
    expect(reports[0].accuracy).toBe(0.5); // every pair a tie, counted ½ as in the official NPO code
    const late = dpo.history.slice(-5);
    expect(mean(late.map((r) => r.loss))).toBeLessThan(0.3);
    expect(mean(late.map((r) => r.accuracy))).toBeGreaterThan(0.8);
    expect(reports.every((r) => r.stepsPerSecond > 0 && Number.isFinite(r.gradNorm))).toBe(true);

    const npo = await trainLora({ ...settings, pairs: train, reverse: true });
    expect(mean(npo.history.slice(-5).map((r) => r.loss))).toBeLessThan(0.3); // it fits the reversed preference
    expect(npo.lora.metadata.objective).toMatch(/NPO/);

    const [dpoEval, npoEval] = [await evaluate(dpo.lora, heldOut), await evaluate(npo.lora, heldOut)];
    expect(dpoEval.accuracy).toBeGreaterThan(0.75);
    expect(dpoEval.margin).toBeLessThan(0);
    expect(npoEval.accuracy).toBeLessThan(0.25); // below chance on the un-reversed pairs
    expect(npoEval.margin).toBeGreaterThan(0); // the losers' denoising loss fell relative to the reference

    // The page loads the diffusers file: it reads back as the same LoRA.
    const targets = [...dpo.lora.entries].map(([modulePath, e]) => ({ modulePath, inFeatures: e.inFeatures, outFeatures: e.outFeatures }));
    const back = parseLora(serializeLora(dpo.lora, 'diffusers'), targets);
    expect(back.entries.size).toBe(56); // 7 transformer blocks × (attn1, attn2) × (q, k, v, out)
    for (const [path, e] of dpo.lora.entries) {
      expect(back.entries.get(path)!.down).toEqual(e.down);
      expect(back.entries.get(path)!.up).toEqual(e.up.map((v) => v * e.scale));
    }
  });

  it('hflip mirrors whole pairs on a coin of its own: mirror-symmetric pairs train exactly as without it, others do not', async () => {
    // [3, 2, 3] (W = 3): each row reversed
    expect(Array.from(mirrorImage(Float32Array.from({ length: 18 }, (_, i) => i), 3))).toEqual([2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9, 14, 13, 12, 17, 16, 15]);
    const symmetrize = (x: Float32Array) => { const m = mirrorImage(x, S); return x.map((v, i) => (v + m[i]) / 2); };
    const quick = { ...settings, steps: 4, batch: 2 };
    const losses = async (pairs: PreferencePair[], hflip: boolean) => (await trainLora({ ...quick, pairs, hflip })).history.map((r) => r.loss);
    // Noise, timesteps and batches do not change when hflip draws its coins; a mirrored symmetric pair is the same pair.
    const symmetric = redOverBlue(4, 4).map((p) => ({ ...p, winner: symmetrize(p.winner), loser: symmetrize(p.loser) }));
    expect(await losses(symmetric, true)).toEqual(await losses(symmetric, false));
    // Asymmetric pairs: some of the 8 draws were mirrored, so the run differs after the first step (the same ln 2).
    const asymmetric = redOverBlue(4, 4);
    const [plain, mirrored] = [await losses(asymmetric, false), await losses(asymmetric, true)];
    expect(mirrored[0]).toBe(plain[0]);
    expect(mirrored.slice(1)).not.toEqual(plain.slice(1));
  });

  it('gradient accumulation: 2 micro-batches of 2 pairs make the update of one batch of 4 (same draws, float32 sums)', async () => {
    const pairs = redOverBlue(8, 5);
    const quick = { ...settings, steps: 3, pairs };
    const [whole, accumulated] = [await trainLora({ ...quick, batch: 4 }), await trainLora({ ...quick, batch: 2, gradAccum: 2 })];
    // β_dpo 2500 multiplies the diffs' float32 round-off (the batch mean taken in another order) into the loss
    accumulated.history.forEach((r, i) => expect(Math.abs(r.loss - whole.history[i].loss)).toBeLessThan(2e-5));
    expect(Math.abs(accumulated.history[2].loss - Math.LN2)).toBeGreaterThan(1e-4); // the updates moved it
    for (const [path, e] of whole.lora.entries) {
      const other = accumulated.lora.entries.get(path)!.up;
      e.up.forEach((v, i) => expect(Math.abs(v - other[i])).toBeLessThan(1e-5));
    }
    await expect(trainLora({ ...quick, gradAccum: 0 })).rejects.toThrow(/gradient accumulation must be a positive integer, got 0/);
  });

  it('lr schedule: constant_with_warmup makes the first update a zero one (LambdaLR at step 0), as the scripts do', async () => {
    const quick = { ...settings, steps: 2, pairs: redOverBlue(4, 6) };
    const [constant, warm] = [await trainLora(quick), await trainLora({ ...quick, lrSchedule: 'constant_with_warmup', lrWarmup: 2 })];
    expect(warm.history[1].loss).toBeCloseTo(Math.LN2, 6); // B is still 0 after a step at lr 0
    expect(Math.abs(constant.history[1].loss - Math.LN2)).toBeGreaterThan(1e-4);
    await expect(trainLora({ ...quick, lrSchedule: 'step' as never })).rejects.toThrow(/lr schedule must be one of/);
  });

  it('stops on a NaN loss with a clear error that carries the last good LoRA', async () => {
    const [pair] = redOverBlue(1, 3);
    pair.loser[5] = NaN;
    const attempt = trainLora({ ...settings, steps: 3, batch: 1, pairs: [pair] });
    await expect(attempt).rejects.toThrow(/step 1: the loss is NaN.*LoRA as of step 0 .* is kept/);
    const error = await attempt.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingError);
    const lastGood = (error as TrainingError).lastGood;
    expect(lastGood.entries.size).toBe(56);
    expect([...lastGood.entries.values()].every((e) => e.up.every((v) => v === 0))).toBe(true);
  });

  it('ends an allocation failure mid-run with the last good LoRA and what to change', async () => {
    // The real onnxruntime-node, with one failure injected: the training session's third run answers as ORT-web's
    // WASM answers when its heap cannot grow (the "failed to call OrtRun() … std::bad_alloc").
    let runs = 0;
    const failing = {
      Tensor: ort.Tensor,
      InferenceSession: {
        async create(...args: Parameters<typeof ort.InferenceSession.create>) {
          const session = await ort.InferenceSession.create(...args);
          if (!session.outputNames.includes('loss')) return session;
          const run = session.run.bind(session);
          return Object.assign(session, { run: (feeds: ort.InferenceSession.FeedsType) => (++runs === 3 ? Promise.reject(new Error('failed to call OrtRun(). ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc')) : run(feeds)) });
        },
      },
    } as unknown as typeof ort;
    const quick = { ...settings, steps: 4, pairs: redOverBlue(4, 8) };
    const error = await trainLora({ ...quick, ort: failing }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingError);
    expect((error as TrainingError).message).toMatch(/^step 3: out of memory \(failed to call OrtRun\(\)\. .*std::bad_alloc\); training stopped, the LoRA as of step 2 is kept\. Lower the resolution, the batch .* or the rank, or recompute activations/);
    expect((error as TrainingError).lastGoodStep).toBe(2);
    // The LoRA kept is the one two uninterrupted steps make.
    const two = await trainLora({ ...quick, steps: 2 });
    for (const [path, e] of two.lora.entries) expect((error as TrainingError).lastGood.entries.get(path)!.up).toEqual(e.up);
  });
});

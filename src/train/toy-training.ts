// Shared by the SD1.5 and SDXL training tests: a separable toy pair set, and the DPO loss over a few AdamW steps on one
// fixed draw (the same ε and t every step, so that "the loss goes down" is a property of the gradient, not the draw).
import type * as OrtCommon from 'onnxruntime-common';
import { createGenerator } from '../diffusion/noise/index.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import type { WeightsPrecision } from './dpo-graph.ts';
import { createAdamW } from './optimizer.ts';
import type { PreferencePair } from './pairs.ts';
import { createRandom } from './random.ts';
import { createLatentEncoder } from './sd-latents.ts';
import { createDpoTrainer } from './train-lora.ts';

type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;

/** Winners bright and smooth, losers dark and noisy (planar RGB in [-1, 1], side × side): a preference a LoRA learns in a few steps. */
export function toyPairs(n: number, side: number): PreferencePair[] {
  const r = createRandom(3);
  const plane = side * side;
  return Array.from({ length: n }, (_, k) => ({
    prompt: k % 2 ? 'a red square' : 'a photo of a cat',
    winner: Float32Array.from({ length: 3 * plane }, (_, i) => 0.6 + 0.3 * Math.sin((i % side) / 6 + k)),
    loser: Float32Array.from({ length: 3 * plane }, () => -0.5 + 0.4 * r.normal()),
  }));
}

/** The loss of `steps` runs of a prepared model's DPO graph on 4 toy pairs' latents, AdamW (lr 1e-3) after each. */
export async function fixedDrawLosses(ort: Ort, manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>, side: number, beta: number, steps: number,
  sessionOptions?: OrtCommon.InferenceSession.SessionOptions, weights?: WeightsPrecision): Promise<number[]> {
  const pairs = toyPairs(4, side);
  const size = { width: side, height: side };
  const encoder = await createLatentEncoder(ort, manifest, files, createGenerator(11), size, sessionOptions);
  const latentPairs = await encoder.encodePairs(pairs);
  await encoder.release();
  const trainer = await createDpoTrainer({ ort, model: { manifest, files }, prompts: [...new Set(pairs.map((p) => p.prompt))], rank: 4, seed: 5, resolution: size, sessionOptions, weights });
  try {
    const optimizer = createAdamW(trainer.params, { lr: 1e-3, weightDecay: 0, maxGradNorm: 1 });
    const losses: number[] = [];
    for (let step = 0; step < steps; step++) {
      const out = await trainer.run(latentPairs, { noise: createGenerator(99), random: createRandom(7) }, beta);
      losses.push(out.loss);
      optimizer.step(out.grads);
    }
    return losses;
  } finally {
    await trainer.release();
  }
}

// The implicit DPO reward margin of a LoRA on preference pairs (Diffusion-DPO, Wallace et al. 2023, eq. 14; our graph
// src/train/dpo-graph.ts): m = −(model_diff − ref_diff), how much more the LoRA-patched UNet's denoising error falls on
// the winner than on the loser compared with the base UNet. m > 0: the LoRA prefers the winner. Measured with fixed
// draws (ε and t from one seed, the same for every LoRA), so the margins of two LoRAs can be compared pair by pair:
// `npm run npo:sweep` scores η on validation pairs with them, `npm run npo:compare` correlates η's with δ's.
import type { LoraSet } from '../lora/types.ts';
import type { PreferencePair } from '../train/pairs.ts';
import { createGenerator } from '../diffusion/noise/index.ts';
import { createRandom } from '../train/random.ts';
import type { DpoTrainer } from '../train/train-lora.ts';

/** m per pair and pass (pass-major), `lora` loaded into `trainer` (whose rank must match); ε and t from `seed`. */
export async function implicitMargins(trainer: DpoTrainer, lora: LoraSet, pairs: readonly PreferencePair[], passes: number, seed = 1234): Promise<Float64Array> {
  for (const l of trainer.graph.lora) {
    const entry = lora.entries.get(l.site.modulePath);
    if (!entry) throw new Error(`the LoRA does not patch ${l.site.modulePath}, a site the trainer's graph has`);
    trainer.params.set(l.a, entry.down);
    trainer.params.set(l.b, entry.up);
  }
  const scale = [...lora.entries.values()][0]?.scale ?? trainer.scale; // the file's alpha/rank, as the engine applies it
  const draw = { noise: createGenerator(seed), random: createRandom(seed) };
  const margins: number[] = [];
  for (let p = 0; p < passes; p++) {
    for (let i = 0; i < pairs.length; i += 16) {
      // β_dpo scales only the loss, not model_diff or ref_diff; 1 is as good as any.
      const out = await trainer.run(pairs.slice(i, i + 16), draw, 1, scale);
      for (let k = 0; k < out.modelDiff.length; k++) margins.push(-(out.modelDiff[k] - out.refDiff[k]));
    }
  }
  return Float64Array.from(margins);
}

/** The DPO graph's accuracy (ties ½) and loss, softplus(−β_dpo·m) averaged, from margins. */
export function marginSummary(margins: Float64Array, betaDpo: number): { accuracy: number; loss: number } {
  let preferred = 0, loss = 0;
  for (const m of margins) {
    preferred += m > 0 ? 1 : m === 0 ? 0.5 : 0;
    const z = -betaDpo * m;
    loss += Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))); // softplus(z), stable for large |z|
  }
  return { accuracy: preferred / margins.length, loss: loss / margins.length };
}

/** Pearson correlation of two equally long series. */
export function correlation(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length || a.length < 2) throw new Error(`correlation needs two series of one length ≥ 2, got ${a.length} and ${b.length}`);
  const mean = (x: Float64Array) => x.reduce((s, v) => s + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) ab += (a[i] - ma) * (b[i] - mb), aa += (a[i] - ma) ** 2, bb += (b[i] - mb) ** 2;
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

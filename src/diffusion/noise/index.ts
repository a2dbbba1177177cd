// Seeded Gaussian noise for initial latents and stochastic scheduler steps.
//
// One generator, documented here, used everywhere (Node CLIs, the worker, the page): PyTorch's CPU generator
// (`torch.manual_seed(seed)` then `torch.randn(...)`), reproduced bit for bit in `torch-cpu.ts`. So the seed a person
// types gives the same initial latents here as diffusers with `generator=torch.Generator("cpu").manual_seed(seed)`,
// and the same again on every machine, because the generator uses only exactly specified floating-point operations.
// A generator is a stream: successive `randn` calls continue it, as successive torch.randn calls do.
//
// Seeds are integers in [0, 2³²−1]; −1 asks for a random seed, and `resolveSeed` returns the seed actually used, so a
// caller shows it and a result can be reproduced.

import { TorchCpuGenerator } from './torch-cpu.ts';

export interface NoiseGenerator {
  /** The seed this generator was created with (never −1). */
  readonly seed: number;
  /** n standard normal values, float32: torch.randn(n) on the CPU after the draws made so far. */
  randn(n: number): Float32Array;
}

export const MAX_SEED = 0xffffffff;

/** −1 → a fresh random seed (crypto-quality, 32 bits); any other value is validated and returned unchanged. */
export function resolveSeed(seed: number): number {
  if (seed === -1) return globalThis.crypto.getRandomValues(new Uint32Array(1))[0];
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
    throw new Error(`seed must be an integer in [0, ${MAX_SEED}] or -1 for random, got ${seed}`);
  }
  return seed;
}

/** A generator seeded like `torch.manual_seed(seed)` (seed −1: random; read `.seed` for the one used). */
export function createGenerator(seed: number): NoiseGenerator {
  const used = resolveSeed(seed);
  const torch = new TorchCpuGenerator(used);
  return {
    seed: used,
    randn(n: number): Float32Array {
      if (!Number.isInteger(n) || n < 0) throw new Error(`randn: element count must be a non-negative integer, got ${n}`);
      return torch.randn(n);
    },
  };
}

/**
 * One generator per image (diffusers' `generator=[...]` list form): randn(n) splits n evenly over the images and
 * draws each image's share from its own stream, so image i is reproducible on its own from seeds[i].
 */
export function createBatchGenerator(seeds: number[]): NoiseGenerator & { readonly seeds: number[] } {
  if (seeds.length === 0) throw new Error('createBatchGenerator: at least one seed is needed');
  const gens = seeds.map((s) => createGenerator(s));
  return {
    seed: gens[0].seed,
    seeds: gens.map((g) => g.seed),
    randn(n: number): Float32Array {
      if (!Number.isInteger(n) || n < 0 || n % gens.length !== 0) {
        throw new Error(`randn: ${n} values do not split evenly over ${gens.length} images`);
      }
      const per = n / gens.length;
      const out = new Float32Array(n);
      gens.forEach((g, i) => out.set(g.randn(per), i * per));
      return out;
    },
  };
}

/**
 * Initial latents for a batch, seeds seed, seed+1, … (A1111's convention; −1 draws the first at random), each scaled
 * by the scheduler's initNoiseSigma. Returns the batch generator too, so stochastic steps continue the same streams.
 */
export function batchLatents(seed: number, batch: number, perImage: number, sigma = 1) {
  const first = resolveSeed(seed);
  const generator = createBatchGenerator(Array.from({ length: batch }, (_, i) => (first + i) % (MAX_SEED + 1)));
  const latents = generator.randn(batch * perImage);
  if (sigma !== 1) for (let k = 0; k < latents.length; k++) latents[k] = latents[k] * sigma;
  return { seeds: generator.seeds, latents, generator };
}

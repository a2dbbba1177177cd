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

/** Initial latents for a batch: one generator per image, seeds seed, seed+1, … (diffusers' list-of-generators form). */
export function batchLatents(seed: number, batch: number, perImage: number, sigma = 1): { seeds: number[]; latents: Float32Array } {
  const first = resolveSeed(seed);
  const seeds = Array.from({ length: batch }, (_, i) => (first + i) % (MAX_SEED + 1));
  const latents = new Float32Array(batch * perImage);
  seeds.forEach((s, i) => {
    const noise = createGenerator(s).randn(perImage);
    for (let k = 0; k < perImage; k++) latents[i * perImage + k] = noise[k] * sigma;
  });
  return { seeds, latents };
}

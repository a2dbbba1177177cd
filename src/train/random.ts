// Seeded randomness for training: which pairs go into a batch, which timesteps, LoRA initialisation. The world's
// mulberry32 for uniforms (integer-only, so the same in every JS engine); normals by Box-Muller. Noise images ε come
// from the project's torch-compatible generator (src/diffusion/noise) instead, so they match torch.randn for a seed.
import { createRng } from '../world/random.ts';

export interface Random {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** A uniformly shuffled copy of [0, n) (Fisher-Yates). */
  permutation(n: number): number[];
}

export function createRandom(seed: number): Random {
  const uniform = createRng(seed);
  const int = (n: number) => Math.min(n - 1, Math.floor(uniform() * n));
  return {
    uniform,
    int,
    normal: () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()),
    permutation(n) {
      const p = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = int(i + 1);
        [p[i], p[j]] = [p[j], p[i]];
      }
      return p;
    },
  };
}

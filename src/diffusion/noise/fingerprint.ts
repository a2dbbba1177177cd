// A short fingerprint of a generator's output, for checking that Node, the worker and the page produce the same
// bits for a seed (FNV-1a over the float32 bytes). NOISE_REFERENCE pins the expected values, computed from this code
// and cross-checked against PyTorch's published draws in torch-cpu.test.ts.

import { createGenerator } from './index.ts';

export function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** Fingerprint of createGenerator(seed).randn(n) followed by randn(m) (exercises both ATen paths and the stream). */
export function noiseFingerprint(seed: number, n = 4 * 64 * 64, m = 7): string {
  const g = createGenerator(seed);
  const a = g.randn(n);
  const b = g.randn(m);
  return `${fnv1a(new Uint8Array(a.buffer))}-${fnv1a(new Uint8Array(b.buffer))}`;
}

/** Expected fingerprints for SD-sized latents (4×64×64) plus 7 more draws. */
export const NOISE_REFERENCE: ReadonlyArray<{ seed: number; fingerprint: string }> = [
  { seed: 0, fingerprint: '4f3dfe78-b8fbff53' },
  { seed: 42, fingerprint: 'beacf568-068fa8d1' },
  { seed: 1234567, fingerprint: 'f3fcbf7e-73bb3262' },
  { seed: 4294967295, fingerprint: '37bb6a54-64954b46' },
];

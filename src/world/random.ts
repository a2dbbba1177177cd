// A seeded uniform PRNG (mulberry32) for the embedded world: small, fast, and the same in Node and every browser, so a
// seed names the same (caption, scene) everywhere.
export type Rng = () => number;

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(rng: Rng, list: readonly T[]): T => list[Math.floor(rng() * list.length)];
export const uniform = (rng: Rng, lo: number, hi: number): number => lo + (hi - lo) * rng();

/** FNV-1a over UTF-16 code units: a stable 32-bit string hash (used for the held-out split). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

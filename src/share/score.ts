// The embedded world's reward for an image on the page: the prompt must be a world caption and the image the world's
// size; anything else (a real model, a free-text prompt) gets a reason instead of a score.
import { scoreImage, type RewardScores } from '../reward/index.ts';
import { rgbaToChw } from './image.ts';

export type PageScore = { ok: true; scores: RewardScores } | { ok: false; reason: string };

export const REWARD_COMPONENTS = ['fidelity', 'detail', 'colour', 'composition'] as const;

export function scoreRgba(rgba: Uint8ClampedArray, width: number, height: number, prompt: string, worldSize = 32): PageScore {
  if (width !== worldSize || height !== worldSize) return { ok: false, reason: `the embedded world's reward scores ${worldSize}×${worldSize} images` };
  try {
    return { ok: true, scores: scoreImage(rgbaToChw(rgba, width, height), prompt) };
  } catch (error) {
    return { ok: false, reason: `no reward: ${(error as Error).message}` };
  }
}

/** "fidelity 0.512 · detail 0.700 · …" for a tooltip. */
export function describeScores(s: RewardScores): string {
  return `total ${s.total.toFixed(3)} = ${REWARD_COMPONENTS.map((k) => `${k} ${s[k].toFixed(3)}`).join(' · ')}`;
}

// Preference scores and win rates for the embedded world (issue 5, item 3): `scoreImage` (score.ts) and `winRate`.
export { scoreImage, REWARD_WEIGHTS, type RewardScores } from './score.ts';

/**
 * Fraction of paired comparisons a wins (ties count half), as the paper's win rates: a[i] and b[i] score the same
 * prompt and seed under two configurations.
 */
export function winRate(a: readonly number[], b: readonly number[], tie = 1e-9): number {
  if (a.length !== b.length || a.length === 0) throw new RangeError(`winRate needs two equally long, non-empty score lists (got ${a.length} and ${b.length})`);
  let wins = 0;
  for (let i = 0; i < a.length; i++) wins += Math.abs(a[i] - b[i]) <= tie ? 0.5 : a[i] > b[i] ? 1 : 0;
  return wins / a.length;
}

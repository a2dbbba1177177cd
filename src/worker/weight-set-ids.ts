// Weight-set ids as the sampler passes them around: 'pos' is θ_pos = θ + η, 'neg:α:β' is θ_neg = θ + α·η + β·δ
// (paper Eq. 10). The UNet takes both stacked at every LoRA site (src/onnx/passes/stack-weight-sets.ts): set 0 holds
// θ_pos, set 1 the one θ_neg of the current (α, β); `weight_set` names each sample's set.
import { WEIGHT_SET_INPUT } from '../onnx/passes/stack-weight-sets.ts';

export const POSITIVE = 'pos';
export const negativeId = (alpha: number, beta: number) => `neg:${alpha}:${beta}`;

export function parseNegativeId(id: string): { alpha: number; beta: number } {
  const [kind, alpha, beta] = id.split(':');
  if (kind !== 'neg' || !Number.isFinite(Number(alpha)) || !Number.isFinite(Number(beta))) throw new Error(`not a weight-set id: ${id}`);
  return { alpha: Number(alpha), beta: Number(beta) };
}

/** The θ_neg a batch needs in set 1 (undefined: θ_pos only) and the `weight_set` values, one per sample. */
export function planBatch(ids: readonly string[]): { negative?: string; sets: BigInt64Array; input: string } {
  const negatives = [...new Set(ids.filter((id) => id !== POSITIVE))];
  if (negatives.length > 1) throw new Error(`one UNet call can serve θ_pos and one θ_neg, got ${negatives.join(', ')}`);
  return { negative: negatives[0], sets: BigInt64Array.from(ids, (id) => (id === POSITIVE ? 0n : 1n)), input: WEIGHT_SET_INPUT };
}

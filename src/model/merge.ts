// Weight merging on the CPU: θ' = θ + Σ c·Δ over dense deltas (a LoRA's ΔW from lora/formats.ts `loraDeltaWeight`,
// or a full fine-tune's θ_dpo − θ). θ_neg = θ + α·η + β·δ is `mergeWeight(θ, [{η, α}, {δ, β}])` (paper Eq. 10).
// This is the float32 reference for the GPU merge kernels and the path where WebGPU is missing.

/**
 * base + Σ coefficient·delta, skipping zero coefficients (so α = β = 0 returns an exact copy of θ). Written into `out`
 * when given (the engine's stacked [θ_pos; θ_neg] arrays), else into a new array.
 */
export function mergeWeight(base: Float32Array, terms: { delta: Float32Array; coefficient: number }[], out = new Float32Array(base.length)): Float32Array {
  if (out.length !== base.length) throw new Error(`mergeWeight: output holds ${out.length} values, the weight ${base.length}`);
  out.set(base);
  for (const { delta, coefficient } of terms) {
    if (coefficient === 0) continue;
    for (let i = 0; i < out.length; i++) out[i] += coefficient * delta[i];
  }
  return out;
}

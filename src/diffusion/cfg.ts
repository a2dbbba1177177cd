// Classifier-free guidance in the paper's convention (DESIGN §2): ε = (ω + 1)·ε_pos − ω·ε_neg, where ε_pos is the
// conditional prediction with θ_pos = θ + η and ε_neg the negative-prompt prediction with θ_neg = θ + α·η + β·δ.
// diffusers' guidance_scale g equals ω + 1: ε = ε_neg + g·(ε_pos − ε_neg).

export function combineCfg(positive: Float32Array, negative: Float32Array, omega: number, out = new Float32Array(positive.length)): Float32Array {
  if (positive.length !== negative.length) throw new RangeError(`CFG: branch outputs differ in size (${positive.length} vs ${negative.length})`);
  const a = omega + 1;
  for (let i = 0; i < positive.length; i++) out[i] = a * positive[i] - omega * negative[i];
  return out;
}

/** diffusers' guidance_scale for a paper ω. */
export const guidanceScale = (omega: number) => omega + 1;

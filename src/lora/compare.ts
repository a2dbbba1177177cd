// How two LoRAs on the same sites relate, compared as the weight changes they make (ΔW = scale·up·down, types.ts):
// the cosine between the two sets' ΔW over all shared sites, the least-squares factor c in ΔW_b ≈ c·ΔW_a, and the
// share of ΔW_b that c·ΔW_a leaves unexplained. `npm run reproduce` prints it for η and δ: trained by the same loss on
// the same pairs reversed, from the same zero start, their first gradients are exact opposites (policy = reference,
// so reversing a pair flips the sign of the DPO loss's gradient), and how far δ stays from −η decides what NPO can add
// on top of DPO: θ_neg = θ + α·η + β·δ ≈ θ + (α + c·β)·η + β·(the rest).
// The cosine compares parametrisations: two LoRAs from different seeds start from different random `down` matrices,
// so their rank-r updates lie in different subspaces and the cosine stays near 0 even when both prefer the same
// images (issue 31: a DPO and an NPO LoRA on the same pairs, −0.84 from one seed and −0.09 from two, while their
// implicit margins correlate −0.89 and −0.74). `npm run npo:compare` compares them as functions too (implicit-margins.ts).
import { findLoraSites } from '../onnx/lora-sites.ts';
import { readModel } from '../onnx/model-io.ts';
import { loraDeltaWeight, parseLora } from './formats.ts';
import type { LoraSet } from './types.ts';

export interface LoraComparison {
  sites: number; // module paths both sets patch
  cosine: number; // ⟨ΔW_a, ΔW_b⟩ / (‖ΔW_a‖ ‖ΔW_b‖) over all shared sites together
  factor: number; // c = ⟨ΔW_a, ΔW_b⟩ / ‖ΔW_a‖², the best c in ΔW_b ≈ c·ΔW_a
  residual: number; // ‖ΔW_b − c·ΔW_a‖ / ‖ΔW_b‖ (0: b is a multiple of a; 1: orthogonal)
  normRatio: number; // ‖ΔW_b‖ / ‖ΔW_a‖
  siteCosines: { min: number; mean: number; max: number }; // the same cosine, site by site
}

export function compareLoras(a: LoraSet, b: LoraSet): LoraComparison {
  let ab = 0, aa = 0, bb = 0;
  const siteCosines: number[] = [];
  for (const [path, entryA] of a.entries) {
    const entryB = b.entries.get(path);
    if (!entryB) continue;
    const [wa, wb] = [loraDeltaWeight(entryA), loraDeltaWeight(entryB)];
    if (wa.length !== wb.length) throw new Error(`LoRA site ${path}: ΔW has ${wa.length} entries in one set and ${wb.length} in the other`);
    let sab = 0, saa = 0, sbb = 0;
    for (let i = 0; i < wa.length; i++) sab += wa[i] * wb[i], saa += wa[i] * wa[i], sbb += wb[i] * wb[i];
    ab += sab, aa += saa, bb += sbb;
    siteCosines.push(saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0);
  }
  if (!siteCosines.length) throw new Error('the two LoRAs patch no common site');
  const factor = aa > 0 ? ab / aa : 0;
  const leftover = Math.max(0, bb - 2 * factor * ab + factor * factor * aa); // ‖b − c·a‖², expanded
  return {
    sites: siteCosines.length,
    cosine: aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0,
    factor,
    residual: bb > 0 ? Math.sqrt(leftover / bb) : 0,
    normRatio: aa > 0 ? Math.sqrt(bb / aa) : Infinity,
    siteCosines: { min: Math.min(...siteCosines), mean: siteCosines.reduce((s, c) => s + c, 0) / siteCosines.length, max: Math.max(...siteCosines) },
  };
}

/** LoRA files (safetensors, any format parseLora reads) as LoraSets on the sites of this UNet (ONNX bytes). */
export function parseLorasFor(unet: Uint8Array, loras: readonly Uint8Array[]): LoraSet[] {
  const targets = findLoraSites(readModel(unet)).map((s) => ({ modulePath: s.modulePath, inFeatures: s.inFeatures, outFeatures: s.outFeatures }));
  return loras.map((bytes) => parseLora(bytes, targets));
}

// A LoRA of seeded random values on the given sites, as a safetensors file in the diffusers (old) key format the
// released NPO weights use (DESIGN §2): the stand-in model's η/δ and the tiny test fixture's. down ~ N(0, 1/in) as
// PEFT's Kaiming-like init, up ~ N(0, std²) (not zero, so the LoRA visibly changes the model).
import type { LoraSite } from '../onnx/lora-sites.ts';
import { writeSafetensors, type TensorToWrite } from '../lora/safetensors.ts';
import { paramSource } from './layers.ts';

export function randomLora(sites: LoraSite[], options: { rank: number; seed: number; std: number; note: string }): Uint8Array {
  const { rank, std } = options;
  const source = paramSource(options.seed);
  const tensors: Record<string, TensorToWrite> = {};
  for (const site of sites) {
    const key = `unet.${site.modulePath}.lora`;
    tensors[`${key}.down.weight`] = { shape: [rank, site.inFeatures], data: source.get(`${key}.down`, [rank, site.inFeatures], { kind: 'normal', std: 1 / Math.sqrt(site.inFeatures) }) };
    tensors[`${key}.up.weight`] = { shape: [site.outFeatures, rank], data: source.get(`${key}.up`, [site.outFeatures, rank], { kind: 'normal', std }) };
  }
  return writeSafetensors(tensors, { format: 'diffusers', note: options.note });
}

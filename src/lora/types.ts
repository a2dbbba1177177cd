// Canonical LoRA data shared by the parser, the serializer, the trainer and the merge kernels.
// Orientation follows torch.nn.Linear: down = A [rank, in], up = B [out, rank], both row-major, and
//   ΔW = scale · up · down   of shape [out, in]   (diffusers LoRALinearLayer, PEFT lora_A/lora_B, kohya lora_down/up).
// An ONNX MatMul initializer exported by diffusers is W transposed ([in, out]), so it receives ΔWᵀ.

import type { LoraFormat } from './keys.ts';

export type { LoraFormat } from './keys.ts';

/** A weight of the graph a LoRA may target, found by the ONNX pass (module path as in diffusers' UNet). */
export interface LoraTarget {
  modulePath: string; // e.g. 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q'
  inFeatures: number;
  outFeatures: number;
}

export interface LoraEntry {
  down: Float32Array; // [rank, inFeatures] row-major
  up: Float32Array; // [outFeatures, rank] row-major
  rank: number;
  scale: number; // alpha / rank (1 when the file stores no alpha); the user's LoRA strength is applied on top
  inFeatures: number;
  outFeatures: number;
  /** The target is a 1×1 Conv: files store down [rank, in, 1, 1] / up [out, rank, 1, 1] (same data as the matrices). */
  conv1x1?: boolean;
}

export interface LoraSet {
  format: LoraFormat; // the key format the set was read from (or will be written in)
  entries: Map<string, LoraEntry>; // keyed by module path, in the order of the targets given to parseLora
  skipped: { key: string; reason: string }[]; // tensors deliberately not applied (text encoder, unmatched if asked)
  metadata: Record<string, string>; // the file's __metadata__, untouched
}

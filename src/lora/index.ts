// LoRA files: safetensors IO, key formats (diffusers / PEFT / kohya) and the canonical LoraSet. See formats.ts
// for the mapping rules and serialize.ts for how each format stores the scale.
export { LoraError } from './errors.ts';
export type { LoraErrorCode } from './errors.ts';
export { readSafetensors, writeSafetensors, MAX_HEADER_BYTES } from './safetensors.ts';
export type { SafetensorsDtype, SafetensorsFile, SafetensorsTensor, TensorToWrite } from './safetensors.ts';
export { parseLora, loraFromSafetensors, loraDeltaWeight, peftAlphaConfig, TEXT_ENCODER_REASON, UNMATCHED_REASON } from './formats.ts';
export type { ParseLoraOptions } from './formats.ts';
export { serializeLora } from './serialize.ts';
export type { LoraWriteFormat } from './serialize.ts';
export type { SerializeLoraOptions } from './serialize.ts';
export { kohyaName, sgmPath, expectedKey, classifyKey } from './keys.ts';
export type { LoraFormat, KeyRole } from './keys.ts';
export type { LoraEntry, LoraSet, LoraTarget } from './types.ts';

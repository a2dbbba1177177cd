// Write a LoraSet as a safetensors LoRA in diffusers, PEFT or kohya key format, readable by diffusers'
// load_lora_weights, by kohya / A1111 / ComfyUI loaders, and by our own parseLora.
// How each format carries the scale:
//   - diffusers (old) has no alpha: scale is folded into up (up' = scale·up, float32), so the file reads back with
//     scale 1 and the same ΔW (to float32 rounding). This is what diffusers itself would apply.
//   - PEFT: __metadata__.lora_adapter_metadata = JSON LoraConfig with `unet.`-prefixed keys, as diffusers'
//     save_lora_weights writes it: r / lora_alpha of the most common entry, rank_pattern / alpha_pattern for the rest.
//   - kohya: a scalar F32 `.alpha` per module (alpha = scale·rank). Scale 0 cannot be written (kohya reads alpha 0
//     as alpha = rank), nor can two module paths that spell the same kohya name. `kohya-sgm` names the modules as
//     kohya's SDXL LoRAs do, by the original SGM UNet (lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q,
//     keys.ts sgmPath; diffusers' load_lora_weights maps them back with _maybe_map_sgm_blocks_to_diffusers).
// Metadata written: { format: 'pt', ...options.metadata, <format-specific> }; the set's own metadata is not copied
// (pass it in options.metadata if wanted).

import { LoraError } from './errors.ts';
import { expectedKey, kohyaName, KOHYA_SUFFIX, sgmPath } from './keys.ts';
import type { KeyRole, LoraFormat } from './keys.ts';
import { writeSafetensors } from './safetensors.ts';
import type { TensorToWrite } from './safetensors.ts';
import type { LoraEntry, LoraSet } from './types.ts';

/** The key formats a LoRA can be written in: the three read formats, and kohya with SGM module names (SDXL). */
export type LoraWriteFormat = LoraFormat | 'kohya-sgm';

/** A module's kohya name: its diffusers path, or for kohya-sgm its SGM path (attention modules only have one). */
function kohyaModuleName(path: string, format: LoraWriteFormat): string {
  if (format !== 'kohya-sgm') return kohyaName(path);
  const sgm = sgmPath(path);
  if (!sgm) throw new LoraError(`cannot write kohya-sgm: ${path} has no SGM block name (only attention modules of down/mid/up blocks do)`, 'argument');
  return kohyaName(sgm);
}

export interface SerializeLoraOptions {
  dtype?: 'F32' | 'F16'; // of the down/up tensors (kohya alphas are always F32)
  metadata?: Record<string, string>;
}

function checkEntry(path: string, e: LoraEntry): void {
  const ok = (n: number) => Number.isSafeInteger(n) && n > 0;
  if (!ok(e.rank) || !ok(e.inFeatures) || !ok(e.outFeatures)) {
    throw new LoraError(`LoRA entry ${path}: rank ${e.rank}, in ${e.inFeatures}, out ${e.outFeatures} must be positive integers`, 'argument');
  }
  if (e.down.length !== e.rank * e.inFeatures) throw new LoraError(`LoRA entry ${path}: down has ${e.down.length} values, expected rank·in = ${e.rank * e.inFeatures}`, 'argument');
  if (e.up.length !== e.outFeatures * e.rank) throw new LoraError(`LoRA entry ${path}: up has ${e.up.length} values, expected out·rank = ${e.outFeatures * e.rank}`, 'argument');
  if (!Number.isFinite(e.scale)) throw new LoraError(`LoRA entry ${path}: scale ${e.scale} is not finite`, 'value');
  for (const [name, data] of [['down', e.down], ['up', e.up]] as const) {
    const i = data.findIndex((v) => !Number.isFinite(v));
    if (i >= 0) throw new LoraError(`LoRA entry ${path}: ${name}[${i}] = ${data[i]} is not finite`, 'value');
  }
}

function mostCommon<T>(values: T[]): T {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
}

/** diffusers-style LoraConfig for the PEFT metadata; keys sorted as diffusers' json.dumps(sort_keys=True). */
function peftMetadata(entries: [string, LoraEntry][]): string {
  const ranks = entries.map(([, e]) => e.rank);
  const alphas = entries.map(([, e]) => e.scale * e.rank);
  const r = entries.length ? mostCommon(ranks) : 8;
  const alpha = entries.length ? mostCommon(alphas) : r;
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  entries.forEach(([path], i) => {
    if (ranks[i] !== r) rankPattern[path] = ranks[i];
    if (alphas[i] !== alpha) alphaPattern[path] = alphas[i];
  });
  const config = {
    'unet.alpha_pattern': alphaPattern,
    'unet.lora_alpha': alpha,
    'unet.r': r,
    'unet.rank_pattern': rankPattern,
    'unet.target_modules': entries.map(([path]) => path),
    'unet.use_rslora': false,
  };
  return JSON.stringify(config, null, 2);
}

/** Serialize `set.entries` in `format`. Throws LoraError on inconsistent entries. */
export function serializeLora(set: Pick<LoraSet, 'entries'>, format: LoraWriteFormat, options: SerializeLoraOptions = {}): Uint8Array {
  const entries = [...set.entries.entries()];
  const tensors = new Map<string, TensorToWrite>();
  const seenKohya = new Map<string, string>();
  for (const [path, e] of entries) {
    checkEntry(path, e);
    let up: Float32Array = e.up;
    if (format === 'diffusers' && e.scale !== 1) up = e.up.map((v) => v * e.scale);
    const kohya = format === 'kohya' || format === 'kohya-sgm';
    if (kohya) {
      const name = kohyaModuleName(path, format);
      const other = seenKohya.get(name);
      if (other !== undefined) throw new LoraError(`cannot write kohya: ${other} and ${path} both spell ${name}`, 'argument');
      seenKohya.set(name, path);
      if (e.scale === 0) throw new LoraError(`cannot write kohya: ${path} has scale 0 (kohya reads alpha 0 as alpha = rank)`, 'value');
    }
    const key = (role: KeyRole) => (kohya ? kohyaModuleName(path, format) + KOHYA_SUFFIX[role] : expectedKey(format as LoraFormat, path, role));
    if (kohya) tensors.set(key('alpha'), { shape: [], data: [e.scale * e.rank], dtype: 'F32' });
    const k = e.conv1x1 ? [1, 1] : []; // torch loaders need the Conv2d weight shape for 1×1 conv targets
    tensors.set(key('down'), { shape: [e.rank, e.inFeatures, ...k], data: e.down });
    tensors.set(key('up'), { shape: [e.outFeatures, e.rank, ...k], data: up });
  }
  const metadata: Record<string, string> = { format: 'pt', ...options.metadata };
  if (format === 'peft') metadata.lora_adapter_metadata = peftMetadata(entries);
  return writeSafetensors(tensors, metadata, { dtype: options.dtype ?? 'F32' });
}

// Reader of the PyTorch training references (fixtures/<sd15|sdxl>/train-reference.safetensors, made by
// scripts/fixtures/make_<sd15|sdxl>_train_reference.py): F32 and I64 tensors by name, and the JSON metadata. The
// project's safetensors reader (src/lora) takes float dtypes only; these files also hold int64 timesteps. Also the
// feeds that put a reference's inputs and LoRA into a DPO training graph.
import { readFileSync } from 'node:fs';
import type * as OrtCommon from 'onnxruntime-common';
import type { DpoGraph } from './dpo-graph.ts';

export interface TrainReference {
  f32(name: string): Float32Array;
  i64(name: string): BigInt64Array;
  shape(name: string): number[];
  has(name: string): boolean;
  /** A metadata entry (settings, checks, versions), JSON-decoded. */
  meta(key: string): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function readTrainReference(path: string): TrainReference {
  const bytes = new Uint8Array(readFileSync(path));
  if (bytes.length < 8) throw new Error(`${path} is not a safetensors file`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new Error(`${path}: header length ${headerLength} runs past the file`);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const body = (name: string, dtype: string) => {
    const entry = header[name];
    if (entry?.dtype !== dtype) throw new Error(`${path} has no ${dtype} tensor ${name}`);
    const [begin, end] = entry.data_offsets as [number, number];
    if (!(begin <= end && 8 + headerLength + end <= bytes.length)) throw new Error(`${path}: ${name} lies outside the file`);
    return bytes.slice(8 + headerLength + begin, 8 + headerLength + end).buffer;
  };
  return {
    f32: (name) => new Float32Array(body(name, 'F32')),
    i64: (name) => new BigInt64Array(body(name, 'I64')),
    shape: (name) => header[name].shape as number[],
    has: (name) => name in header && name !== '__metadata__',
    meta: (key) => JSON.parse(header.__metadata__[key]),
  };
}

/**
 * The training graph's feeds for the reference's draw: its pair (swapped for NPO, the official one-line flip), noise,
 * t, context, added conditions and LoRA factors; β_dpo times the script's own scale (0.5 for SDXL, settings.beta_scale).
 */
export function referenceFeeds(ort: Pick<typeof OrtCommon, 'Tensor'>, ref: TrainReference, graph: DpoGraph, objective: 'dpo' | 'npo' = 'dpo'): Record<string, OrtCommon.Tensor> {
  const settings = ref.meta('settings');
  const tensor = (name: string) => new ort.Tensor('float32', ref.f32(name), ref.shape(name));
  const [w, l] = objective === 'npo' ? ['inputs.x_l', 'inputs.x_w'] : ['inputs.x_w', 'inputs.x_l'];
  const t = ref.i64('inputs.timesteps');
  const feeds: Record<string, OrtCommon.Tensor> = {
    x_w: tensor(w), x_l: tensor(l), noise: tensor('inputs.noise'), alpha_bar: tensor('inputs.alpha_bar'),
    timestep: new ort.Tensor('float32', Float32Array.from(t, Number), [t.length]), context: tensor('inputs.encoder_hidden_states'),
    beta_dpo: new ort.Tensor('float32', Float32Array.of(settings.beta_dpo * (settings.beta_scale ?? 1)), []),
    lora_scale: new ort.Tensor('float32', Float32Array.of(settings.lora_alpha / settings.rank), []),
  };
  for (const c of graph.added) feeds[c.name] = tensor(`inputs.${c.name}`);
  for (const s of graph.lora) {
    feeds[s.a] = tensor(`lora.${s.site.modulePath}.lora_A`);
    feeds[s.b] = tensor(`lora.${s.site.modulePath}.lora_B`);
  }
  return feeds;
}

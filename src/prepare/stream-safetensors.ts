// safetensors files too large to hold in memory (a diffusers UNet: 3.4 GB), read tensor by tensor by byte range from
// an input folder (io.ts: disk, chosen files, the Hub), and written through shard-writer.ts. The header rules are
// src/lora/safetensors.ts's own (readHeaderLength, parseSafetensorsHeader), so a streamed file is refused for
// exactly the reasons an in-memory one would be. A diffusers folder sharded by
// `diffusion_pytorch_model.safetensors.index.json` ({ weight_map: { tensor: file } }) is read as one set of tensors.
import { LoraError } from '../lora/errors.ts';
import {
  decodeTensorBytes, encodeSafetensorsHeader, parseSafetensorsHeader, readHeaderLength, DTYPE_BYTES,
  type SafetensorsDtype, type SafetensorsEntry,
} from '../lora/safetensors.ts';
import { readText, type InputFolder } from './io.ts';

export interface StreamedSafetensors {
  path: string;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Where the data section starts: a tensor's bytes lie at dataStart + begin. */
  dataStart: number;
  /** Reads one tensor's values (decoded to float32) from the file. */
  read(name: string): Promise<Float32Array>;
}

/** Opens a safetensors file of `folder` and validates its header; tensor data is read only on demand. */
export async function openSafetensors(folder: InputFolder, path: string): Promise<StreamedSafetensors> {
  const name = folder.name(path);
  const size = await folder.size(path);
  if (size === undefined) throw new Error(`${name}: no such file`);
  try {
    const n = readHeaderLength(await folder.read(path, 0, Math.min(8, size)), size);
    const dataStart = 8 + n;
    const { entries, metadata } = parseSafetensorsHeader(await folder.read(path, 8, dataStart), size - dataStart);
    const byName = new Map(entries.map((e) => [e.name, e]));
    return {
      path: name,
      entries: byName,
      metadata,
      dataStart,
      async read(tensor) {
        const e = byName.get(tensor);
        if (!e) throw new LoraError(`safetensors: ${name} has no tensor ${JSON.stringify(tensor)}`, 'argument');
        return decodeTensorBytes(await folder.read(path, dataStart + e.begin, dataStart + e.end), e.dtype);
      },
    };
  } catch (error) {
    if (error instanceof LoraError) error.message = `${name}: ${error.message}`;
    throw error;
  }
}

/** One tensor of a (possibly sharded) set, with the file it lives in and where its bytes start in that file. */
export interface TensorSet {
  entries: Map<string, SafetensorsEntry & { file: string; start: number }>;
  read(name: string): Promise<Float32Array>;
}

/**
 * A diffusers model folder's weights: `<base>.safetensors`, or the shards its `<base>.safetensors.index.json` lists.
 * A tensor listed in the index but absent from its shard (or present in two shards) is an error.
 */
export async function openSafetensorsFolder(folder: InputFolder, base = 'diffusion_pytorch_model'): Promise<TensorSet> {
  const single = `${base}.safetensors`;
  const index = `${base}.safetensors.index.json`;
  let files: string[];
  if (await folder.size(single) !== undefined) files = [single];
  else if (await folder.size(index) !== undefined) files = parseShardIndex(await readText(folder, index), folder.name(index));
  else throw new Error(`${folder.label}: neither ${single} nor ${index} (is it a diffusers model folder?)`);
  const opened: StreamedSafetensors[] = [];
  for (const f of files) opened.push(await openSafetensors(folder, f));
  const entries: TensorSet['entries'] = new Map();
  const owner = new Map<string, StreamedSafetensors>();
  for (const o of opened) {
    for (const [name, e] of o.entries) {
      const other = owner.get(name);
      if (other) throw new Error(`tensor ${name} is in two shards: ${other.path} and ${o.path}`);
      owner.set(name, o);
      entries.set(name, { ...e, file: o.path, start: o.dataStart + e.begin });
    }
  }
  return {
    entries,
    read: (name) => {
      const o = owner.get(name);
      if (!o) throw new Error(`${folder.label}: no tensor ${JSON.stringify(name)}`);
      return o.read(name);
    },
  };
}

/**
 * The shard files a `*.safetensors.index.json` names (hostile input: each must be a plain file name beside the
 * index), in order of first appearance.
 */
export function parseShardIndex(text: string, label: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (error) {
    throw new Error(`${label} is not valid JSON: ${(error as Error).message}`);
  }
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${label} has no weight_map object`);
  const files = new Set<string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file === '' || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
      throw new Error(`${label}: tensor ${name} names the shard ${typeof file === 'string' ? JSON.stringify(file.slice(0, 200)) : typeof file}, expected a file name beside the index`);
    }
    files.add(file);
  }
  if (files.size === 0) throw new Error(`${label}: its weight_map names no shard`);
  return [...files];
}

/** A tensor to write: its layout is known before its values are computed, so the header can go first. */
export interface PlannedTensor {
  name: string;
  dtype: 'F32' | 'F16';
  shape: readonly number[];
}

/**
 * The header (8-byte length + JSON) of a safetensors file holding `plan`'s tensors back to back in that order; the
 * caller then appends each tensor's bytes in the same order (see shard-writer.ts), one tensor in memory at a time.
 */
export function planSafetensors(plan: readonly PlannedTensor[], metadata?: Record<string, string>): { header: Uint8Array; dataBytes: number } {
  let offset = 0;
  const layout: SafetensorsEntry[] = plan.map((t) => {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype as SafetensorsDtype];
    const e = { name: t.name, dtype: t.dtype, shape: [...t.shape], begin: offset, end: offset + bytes };
    offset += bytes;
    return e;
  });
  return { header: encodeSafetensorsHeader(layout, metadata), dataBytes: offset };
}

// safetensors files too large to hold in memory (a diffusers UNet: 3.4 GB), read and written tensor by tensor through
// file handles. The header rules are src/lora/safetensors.ts's own (readHeaderLength, parseSafetensorsHeader), so a
// streamed file is refused for exactly the reasons an in-memory one would be. A diffusers folder sharded by
// `diffusion_pytorch_model.safetensors.index.json` ({ weight_map: { tensor: file } }) is read as one set of tensors.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LoraError } from '../lora/errors.ts';
import {
  decodeTensorBytes, encodeSafetensorsHeader, parseSafetensorsHeader, readHeaderLength, DTYPE_BYTES,
  type SafetensorsDtype, type SafetensorsEntry,
} from '../lora/safetensors.ts';

export interface StreamedSafetensors {
  path: string;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Reads one tensor's values (decoded to float32) from the file. */
  read(name: string): Float32Array;
  close(): void;
}

/** Reads exactly `length` bytes at `position` (a short read means the file changed under us: an error). */
export function readExactly(fd: number, length: number, position: number, what: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, length - done, position + done);
    if (n === 0) throw new Error(`${what}: file ended after ${position + done} bytes while reading ${length} bytes at ${position}`);
    done += n;
  }
  return out;
}

/** Opens a safetensors file and validates its header; tensor data is read only on demand. */
export function openSafetensors(path: string): StreamedSafetensors {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const first8 = readExactly(fd, Math.min(8, size), 0, path);
    const n = readHeaderLength(first8, size);
    const dataStart = 8 + n;
    const { entries, metadata } = parseSafetensorsHeader(readExactly(fd, n, 8, path), size - dataStart);
    const byName = new Map(entries.map((e) => [e.name, e]));
    return {
      path,
      entries: byName,
      metadata,
      read(name) {
        const e = byName.get(name);
        if (!e) throw new LoraError(`safetensors: ${path} has no tensor ${JSON.stringify(name)}`, 'argument');
        return decodeTensorBytes(readExactly(fd, e.end - e.begin, dataStart + e.begin, path), e.dtype);
      },
      close: () => closeSync(fd),
    };
  } catch (error) {
    closeSync(fd);
    if (error instanceof LoraError) error.message = `${path}: ${error.message}`;
    throw error;
  }
}

/** One tensor of a (possibly sharded) set, with the file it lives in. */
export interface TensorSet {
  entries: Map<string, SafetensorsEntry & { file: string }>;
  read(name: string): Float32Array;
  close(): void;
}

/**
 * A diffusers model folder's weights: `<base>.safetensors`, or the shards its `<base>.safetensors.index.json` lists.
 * A tensor listed in the index but absent from its shard (or present in two shards) is an error.
 */
export function openSafetensorsFolder(dir: string, base = 'diffusion_pytorch_model'): TensorSet {
  const single = join(dir, `${base}.safetensors`);
  const index = join(dir, `${base}.safetensors.index.json`);
  let files: string[];
  if (existsSync(single)) files = [single];
  else if (existsSync(index)) files = shardsOfIndex(index);
  else throw new Error(`${dir}: neither ${base}.safetensors nor ${base}.safetensors.index.json (is it a diffusers model folder?)`);
  const opened: StreamedSafetensors[] = [];
  try {
    for (const f of files) opened.push(openSafetensors(f));
  } catch (error) {
    for (const o of opened) o.close();
    throw error;
  }
  const entries = new Map<string, SafetensorsEntry & { file: string }>();
  const owner = new Map<string, StreamedSafetensors>();
  for (const o of opened) {
    for (const [name, e] of o.entries) {
      const other = owner.get(name);
      if (other) throw new Error(`tensor ${name} is in two shards: ${other.path} and ${o.path}`);
      owner.set(name, o);
      entries.set(name, { ...e, file: o.path });
    }
  }
  return {
    entries,
    read: (name) => {
      const o = owner.get(name);
      if (!o) throw new Error(`${dir}: no tensor ${JSON.stringify(name)}`);
      return o.read(name);
    },
    close: () => opened.forEach((o) => o.close()),
  };
}

function shardsOfIndex(indexPath: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (error) {
    throw new Error(`${indexPath} is not valid JSON: ${(error as Error).message}`);
  }
  const map = (index as { weight_map?: unknown })?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${indexPath} has no weight_map object`);
  const files = new Set<string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\') || file.startsWith('.')) {
      throw new Error(`${indexPath}: tensor ${name} names the shard ${JSON.stringify(file)}, expected a file name beside the index`);
    }
    files.add(file);
  }
  return [...files].map((f) => join(dirname(indexPath), f));
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

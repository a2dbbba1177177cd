// Writing weight files sequentially, hashing while writing, and splitting them into shards a browser can hold
// (protobuf and ArrayBuffers stop at 2 GB; we default to 1 GiB). Each tensor starts at a 64-byte aligned offset so
// a loader can view it as a typed array without copying, and no tensor straddles two shards. Files go into an
// OutputFolder (io.ts): a folder on disk, or the browser's origin-private file system.
import { createSha256 } from '../util/sha256.ts';
import { joinPath, type OutputFolder } from './io.ts';

export const DEFAULT_SHARD_BYTES = 1024 ** 3;
/** No shard may reach this (V8's ArrayBuffer and protobuf's limits): a single larger tensor is refused. */
export const HARD_SHARD_LIMIT = 2 ** 31 - 1;
export const ALIGN = 64;
/** Files are read back in pieces of this size to be hashed. */
const READ_BACK_BYTES = 16 << 20;

export interface WrittenFile {
  /** Path relative to the folder the writer was given. */
  file: string;
  bytes: number;
  sha256: string;
}

/** An append-only file: bytes go to the output and into the SHA-256 in the same order. */
export interface Appender {
  readonly file: string;
  position(): number;
  append(bytes: Uint8Array): Promise<void>;
  /** Pads with zeros to a multiple of `align` bytes. */
  pad(align: number): Promise<void>;
  finish(): Promise<WrittenFile>;
}

/** `file` in `dir` (relative to the output folder), created empty. */
export async function openAppender(out: OutputFolder, dir: string, file: string): Promise<Appender> {
  const handle = await out.create(joinPath(dir, file));
  const hash = createSha256();
  let pos = 0;
  let open = true;
  const append = async (bytes: Uint8Array) => {
    if (!open) throw new Error(`${file}: append after finish`);
    await handle.write(bytes);
    hash.update(bytes);
    pos += bytes.length;
  };
  return {
    file,
    position: () => pos,
    append,
    async pad(align) {
      const gap = (align - (pos % align)) % align;
      if (gap) await append(new Uint8Array(gap));
    },
    async finish() {
      if (open) await handle.close();
      open = false;
      return { file, bytes: pos, sha256: hash.hex() };
    },
  };
}

/** A whole small file, written and hashed. */
export async function writeWhole(out: OutputFolder, path: string, bytes: Uint8Array): Promise<WrittenFile> {
  const file = await openAppender(out, '', path);
  await file.append(bytes);
  return file.finish();
}

/** Where a tensor landed: ONNX external-data fields (location relative to the graph's folder). */
export interface Placement {
  location: string;
  offset: number;
  length: number;
}

/**
 * External-data shards `<prefix>-00.bin`, `<prefix>-01.bin`, … in `dir`: `place` appends one tensor's bytes at a
 * 64-byte aligned offset, opening the next shard when this one would pass `maxBytes`.
 */
export function createShardSet(out: OutputFolder, dir: string, prefix = 'weights', maxBytes = DEFAULT_SHARD_BYTES) {
  const done: WrittenFile[] = [];
  let current: Appender | null = null;
  const name = (i: number) => `${prefix}-${String(i).padStart(2, '0')}.bin`;
  return {
    async place(tensorName: string, bytes: Uint8Array): Promise<Placement> {
      if (bytes.length > HARD_SHARD_LIMIT) {
        throw new Error(`tensor ${tensorName} is ${bytes.length} bytes: no browser can hold one tensor over 2 GB`);
      }
      if (current) {
        const aligned = Math.ceil(current.position() / ALIGN) * ALIGN;
        if (aligned + bytes.length > maxBytes && current.position() > 0) {
          done.push(await current.finish());
          current = null;
        }
      }
      current ??= await openAppender(out, dir, name(done.length));
      await current.pad(ALIGN);
      const offset = current.position();
      await current.append(bytes);
      return { location: current.file, offset, length: bytes.length };
    },
    /** Closes the last shard; returns every shard written (none if no tensor was placed). */
    async finish(): Promise<WrittenFile[]> {
      if (current) done.push(await current.finish());
      current = null;
      return done;
    },
  };
}

/** SHA-256 of a written file, read back in 16 MiB pieces (verification after writing); `onBytes` sees each piece. */
export async function hashOutput(out: OutputFolder, path: string, bytes: number, onBytes?: (n: number) => void): Promise<string> {
  const hash = createSha256();
  for (let at = 0; at < bytes; at += READ_BACK_BYTES) {
    const piece = await out.read(path, at, Math.min(bytes, at + READ_BACK_BYTES));
    hash.update(piece);
    onBytes?.(piece.length);
  }
  return hash.hex();
}

// Writing weight files sequentially, hashing while writing, and splitting them into shards a browser can hold
// (protobuf and ArrayBuffers stop at 2 GB; we default to 1 GiB). Each tensor starts at a 64-byte aligned offset so
// a loader can view it as a typed array without copying, and no tensor straddles two shards.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_SHARD_BYTES = 1024 ** 3;
/** No shard may reach this (V8's ArrayBuffer and protobuf's limits): a single larger tensor is refused. */
export const HARD_SHARD_LIMIT = 2 ** 31 - 1;
export const ALIGN = 64;

export interface WrittenFile {
  /** Path relative to the folder the writer was given. */
  file: string;
  bytes: number;
  sha256: string;
}

/** An append-only file: bytes go to disk and into the SHA-256 in the same order. */
export interface Appender {
  readonly file: string;
  position(): number;
  append(bytes: Uint8Array): void;
  /** Pads with zeros to a multiple of `align` bytes. */
  pad(align: number): void;
  finish(): WrittenFile;
}

export function openAppender(dir: string, file: string): Appender {
  const fd = openSync(join(dir, file), 'w');
  const hash: Hash = createHash('sha256');
  let pos = 0;
  let open = true;
  const append = (bytes: Uint8Array) => {
    if (!open) throw new Error(`${file}: append after finish`);
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, pos + done);
    hash.update(bytes);
    pos += bytes.length;
  };
  return {
    file,
    position: () => pos,
    append,
    pad(align) {
      const gap = (align - (pos % align)) % align;
      if (gap) append(new Uint8Array(gap));
    },
    finish() {
      if (open) closeSync(fd);
      open = false;
      return { file, bytes: pos, sha256: hash.digest('hex') };
    },
  };
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
export function createShardSet(dir: string, prefix = 'weights', maxBytes = DEFAULT_SHARD_BYTES) {
  const done: WrittenFile[] = [];
  let current: Appender | null = null;
  const name = (i: number) => `${prefix}-${String(i).padStart(2, '0')}.bin`;
  return {
    place(tensorName: string, bytes: Uint8Array): Placement {
      if (bytes.length > HARD_SHARD_LIMIT) {
        throw new Error(`tensor ${tensorName} is ${bytes.length} bytes: no browser can hold one tensor over 2 GB`);
      }
      if (current) {
        const aligned = Math.ceil(current.position() / ALIGN) * ALIGN;
        if (aligned + bytes.length > maxBytes && current.position() > 0) {
          done.push(current.finish());
          current = null;
        }
      }
      current ??= openAppender(dir, name(done.length));
      current.pad(ALIGN);
      const offset = current.position();
      current.append(bytes);
      return { location: current.file, offset, length: bytes.length };
    },
    /** Closes the last shard; returns every shard written (none if no tensor was placed). */
    finish(): WrittenFile[] {
      if (current) done.push(current.finish());
      current = null;
      return done;
    },
  };
}

/** SHA-256 and size of a file, read back in 16 MiB chunks (verification after writing). */
export function hashFile(path: string): { bytes: number; sha256: string } {
  const fd = openSync(path, 'r');
  try {
    const hash = createHash('sha256');
    const chunk = new Uint8Array(16 * 1024 * 1024);
    let pos = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      pos += n;
    }
    return { bytes: pos, sha256: hash.digest('hex') };
  } finally {
    closeSync(fd);
  }
}

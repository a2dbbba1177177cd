// A model source: the one way the engine, the trainer and the CLIs read a model directory's files, wherever they are
// (a URL with the browser cache: url.ts; a folder the person chose: chosen-files.ts; disk: node-directory.ts; memory:
// memory.ts). A file is either read whole (graphs, tokenizers, LoRAs, and on WASM the shards ORT takes) or streamed
// in bounded chunks tagged with their byte offsets, so large weights go to GPU buffers without ever being whole in
// JS (DESIGN decision 7; src/gpu/upload.ts). Every byte passes the manifest's size and SHA-256 check (check.ts),
// and a stream's last chunk is handed out only after the whole file verified: a consumer that finishes the loop
// without an error holds exactly the manifest's bytes.
import { ManifestError, type AnyManifest, type ManifestFile } from '../manifest.ts';
import { sizeError, startFileCheck } from './check.ts';

/** Bytes of a file from `offset` on. Read-only: a chunk may be a view of the source's own memory. */
export interface ModelChunk {
  offset: number;
  bytes: Uint8Array;
}

/** Where a file's bytes came from, for progress messages. */
export type ByteOrigin = 'network' | 'cache' | 'file' | 'memory';

export interface ReadOptions {
  signal?: AbortSignal;
  /**
   * Bytes of this file received so far (about every MiB). It starts again from 0 when a source restarts the file
   * (a corrupt browser-cache entry found mid-stream is dropped and the file downloaded).
   */
  onBytes?: (received: number, from: ByteOrigin) => void;
}

export interface StreamOptions extends ReadOptions {
  /** The largest chunk handed out (default 8 MiB): what a consumer holds of the file at a time. */
  chunkBytes?: number;
}

export interface ModelSource {
  readonly manifest: AnyManifest;
  /** A listed file whole, its size and SHA-256 verified. */
  read(path: string, options?: ReadOptions): Promise<Uint8Array>;
  /**
   * A listed file in chunks of at most `chunkBytes`, in order from offset 0. The check runs as the bytes pass; a
   * mismatch throws a ManifestError before the last chunk is handed out. A source may restart a file from offset 0
   * (the chunks then rewrite the same positions). Each call reads the file again (device-loss recovery, a new η).
   */
  stream(path: string, options?: StreamOptions): AsyncIterable<ModelChunk>;
}

export const DEFAULT_CHUNK_BYTES = 8 << 20;
/** Progress is reported about this often (a network body arrives in pieces of tens of KB). */
const REPORT_EVERY_BYTES = 1 << 20;

/** What a source's own code gets: the chunk size is settled. */
export type FileStreamOptions = ReadOptions & { chunkBytes: number };

/** How a source streams one listed file: usually `verifiedChunks` over the pieces it reads. */
export type StreamFile = (entry: ManifestFile, options: FileStreamOptions) => AsyncIterable<ModelChunk>;

/** A ModelSource from a manifest and a way to stream its files; `read` collects a stream of one whole-file chunk. */
export function createModelSource(manifest: AnyManifest, streamFile: StreamFile): ModelSource {
  const stream = (path: string, options: StreamOptions = {}) => {
    const { chunkBytes = DEFAULT_CHUNK_BYTES } = options;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) throw new RangeError(`chunkBytes ${chunkBytes} is not a positive integer`);
    return streamFile(listedFile(manifest, path), { ...options, chunkBytes });
  };
  async function read(path: string, options: ReadOptions = {}): Promise<Uint8Array> {
    let whole: Uint8Array = new Uint8Array(0);
    // One chunk of the file's size: handed out only once the whole file verified (a restart hands out nothing before).
    for await (const { bytes } of stream(path, { ...options, chunkBytes: Math.max(1, listedFile(manifest, path).bytes) })) whole = bytes;
    return whole;
  }
  return { manifest, read, stream };
}

/** The manifest's entry for a path, or a ManifestError: only listed (and so hashed) files are ever read. */
export function listedFile(manifest: AnyManifest, path: string): ManifestFile {
  const entry = manifest.files.find((f) => f.path === path);
  if (!entry) throw new ManifestError(`${path} is not listed in the model's manifest`);
  return entry;
}

/**
 * The checked chunks of a file from its pieces as they arrive (any sizes, in order from byte 0): pieces are regrouped
 * into chunks of `chunkBytes` (passed through without a copy when one fills a chunk exactly), every piece goes through
 * the check, and the chunk that ends the file waits until the check passed.
 */
export async function* verifiedChunks(entry: ManifestFile, from: ByteOrigin, pieces: AsyncIterable<Uint8Array>, options: FileStreamOptions): AsyncGenerator<ModelChunk> {
  const { chunkBytes, signal, onBytes } = options;
  signal?.throwIfAborted();
  const check = startFileCheck(entry);
  const chunks = chunker(entry.bytes, chunkBytes);
  let reported = 0;
  let last: ModelChunk | undefined;
  for await (const piece of pieces) {
    signal?.throwIfAborted();
    check.update(piece); // throws as soon as the bytes run past the manifest's size
    for (const chunk of chunks.add(piece)) {
      if (chunk.offset + chunk.bytes.byteLength === entry.bytes) last = chunk;
      else yield chunk;
    }
    if (check.received - reported >= REPORT_EVERY_BYTES) onBytes?.((reported = check.received), from);
  }
  check.finish();
  onBytes?.(check.received, from);
  if (last) yield last;
}

/** Regroups pieces into chunks of `chunkBytes` (the last one shorter) of a file of `fileBytes`. */
function chunker(fileBytes: number, chunkBytes: number) {
  let offset = 0; // of the chunk being filled
  let filling: Uint8Array | undefined;
  let filled = 0;
  return {
    *add(piece: Uint8Array): Generator<ModelChunk> {
      for (let at = 0; at < piece.byteLength;) {
        const size = Math.min(chunkBytes, fileBytes - offset);
        if (!filling && piece.byteLength - at >= size) {
          yield { offset, bytes: piece.subarray(at, at + size) };
          [offset, at] = [offset + size, at + size];
          continue;
        }
        filling ??= new Uint8Array(size);
        const n = Math.min(size - filled, piece.byteLength - at);
        filling.set(piece.subarray(at, at + n), filled);
        [filled, at] = [filled + n, at + n];
        if (filled === size) {
          yield { offset, bytes: filling };
          [offset, filling, filled] = [offset + size, undefined, 0];
        }
      }
    },
  };
}

/**
 * The pieces of a file that can be read at any position (a Blob, a file on disk, memory), after checking its size:
 * a file of the wrong size is refused before a byte is read.
 */
export async function* positionalPieces(entry: ManifestFile, size: number, pieceBytes: number, readRange: (start: number, end: number) => Promise<Uint8Array> | Uint8Array): AsyncGenerator<Uint8Array> {
  if (size !== entry.bytes) throw sizeError(entry, size);
  for (let start = 0; start < size; start += pieceBytes) yield await readRange(start, Math.min(size, start + pieceBytes));
}

/** A byte stream's chunks as pieces; stopping early (an error, a cancel) cancels the stream. */
export async function* streamPieces(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      yield next.value;
    }
    done = true;
  } finally {
    if (!done) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

export const isAbort = (error: unknown) => (error as { name?: string })?.name === 'AbortError';

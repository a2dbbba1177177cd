// Model files in browser storage (issue 6 item 4): the Cache API, keyed by each file's SHA-256 from the manifest, so
// a second visit loads offline and a changed file (new hash) is fetched again. Entries are written and read as
// streams: a download is stored as its bytes pass (url.ts), and the entry is committed only after the whole file
// verified; what comes out of the cache is checked again as it streams, and a corrupt entry is dropped and
// downloaded again. Storage errors never fail a load: a full quota (QuotaExceededError) or storage that is not
// available becomes a notice and the file is used uncached.

export interface ModelCache {
  /** The stored bytes of the file with this SHA-256, or undefined when none are stored. */
  get(sha256: string): Promise<ReadableStream<Uint8Array> | undefined>;
  /** Starts storing a file; nothing is stored until `commit`. */
  begin(sha256: string, bytes: number): CacheEntryWriter;
  delete(sha256: string): Promise<void>;
  /** Removes every cached model file; returns how many files and bytes were freed. */
  clear(): Promise<{ files: number; bytes: number }>;
}

export interface CacheEntryWriter {
  /** Adds bytes; waits while storage is behind (bounded memory); rejects with the storage error when storing failed. */
  write(bytes: Uint8Array): Promise<void>;
  /** Stores the entry; rejects with the storage error (e.g. QuotaExceededError) when it could not be stored. */
  commit(): Promise<void>;
  /** Drops the entry (the file failed its check, or the read was cancelled). */
  abort(reason: unknown): void;
}

const CACHE_NAME = 'npo-playground-models-v1';
/** Bytes queued for storage before a download waits for the cache to catch up. */
const QUEUED_BYTES = 8 << 20;

/** The Cache API store, or undefined where there is none (insecure contexts, some private modes). */
export async function openModelCache(): Promise<ModelCache | undefined> {
  if (typeof caches === 'undefined') return undefined;
  let cache: Cache;
  try {
    cache = await caches.open(CACHE_NAME);
  } catch {
    return undefined; // e.g. SecurityError in an opaque origin
  }
  // Synthetic URLs: never fetched, only used as keys.
  const key = (sha256: string) => new URL(`/__model-cache__/sha256/${sha256}`, self.location.origin).href;
  return {
    async get(sha256) {
      return (await cache.match(key(sha256)))?.body ?? undefined;
    },
    begin(sha256, bytes) {
      return storeStream((body) => cache.put(key(sha256), new Response(body, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes) } })));
    },
    async delete(sha256) {
      await cache.delete(key(sha256));
    },
    async clear() {
      let [files, bytes] = [0, 0];
      for (const request of await cache.keys()) {
        const response = await cache.match(request);
        bytes += Number(response?.headers.get('content-length') ?? 0);
        files += 1;
        await cache.delete(request);
      }
      return { files, bytes };
    },
  };
}

/**
 * A writer whose bytes become the body `store` consumes (Cache.put reads a streamed Response to its end, and stores
 * nothing when the body errors). Writes wait on the body's backpressure, or fail as soon as `store` has failed.
 */
export function storeStream(store: (body: ReadableStream<Uint8Array>) => Promise<void>): CacheEntryWriter {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>(undefined, new ByteLengthQueuingStrategy({ highWaterMark: QUEUED_BYTES }));
  const writer = writable.getWriter();
  const stored = Promise.resolve(readable).then(store); // a store that throws at once fails like one that fails later
  const failed = stored.then(() => new Promise<never>(() => undefined)); // never settles unless storing fails
  stored.catch(() => undefined); // reported through write and commit
  /** After the body broke: the storage error (the body is cancelled when storing fails, so `stored` settles). */
  const storageError = async (): Promise<never> => {
    await stored;
    throw new Error('the browser cache stopped reading the file');
  };
  return {
    async write(bytes) {
      await Promise.race([writer.ready, failed]).catch(storageError);
      writer.write(bytes).catch(() => undefined); // a failure shows in `stored`
    },
    async commit() {
      await Promise.race([writer.close(), failed]).catch(storageError);
      await stored;
    },
    abort(reason) {
      writer.abort(reason).catch(() => undefined);
    },
  };
}

/** A storage failure as a sentence for the page; quota errors say what to do. */
export function describeStorageError(path: string, error: unknown): string {
  const name = (error as { name?: string })?.name;
  if (name === 'QuotaExceededError') {
    return `browser storage is full (QuotaExceededError): ${path} is not cached and will be downloaded again next visit; free site data to cache it`;
  }
  return `could not cache ${path} in browser storage (${(error as Error)?.message ?? String(error)}); it will be downloaded again next visit`;
}

// Model files in browser storage (issue 6 item 4): the Cache API, keyed by each file's SHA-256 from the manifest, so
// a second visit loads offline and a changed file (new hash) is fetched again. What comes out of the cache is hashed
// again before use (model-loader.ts `verify`); a corrupt entry is dropped and refetched. Storage errors never fail a
// load: a full quota (QuotaExceededError) or storage that is not available becomes a notice and the file is used
// uncached.

export interface ModelCache {
  get(sha256: string): Promise<Uint8Array | undefined>;
  put(sha256: string, bytes: Uint8Array): Promise<void>;
  delete(sha256: string): Promise<void>;
  /** Removes every cached model file; returns how many files and bytes were freed. */
  clear(): Promise<{ files: number; bytes: number }>;
}

const CACHE_NAME = 'npo-playground-models-v1';

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
      const response = await cache.match(key(sha256));
      return response ? new Uint8Array(await response.arrayBuffer()) : undefined;
    },
    async put(sha256, bytes) {
      const body = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
      await cache.put(key(sha256), new Response(body, { headers: { 'content-length': String(bytes.byteLength) } }));
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

/** A storage failure as a sentence for the page; quota errors say what to do. */
export function describeStorageError(path: string, error: unknown): string {
  const name = (error as { name?: string })?.name;
  if (name === 'QuotaExceededError') {
    return `browser storage is full (QuotaExceededError): ${path} is not cached and will be downloaded again next visit; free site data to cache it`;
  }
  return `could not cache ${path} in browser storage (${(error as Error)?.message ?? String(error)}); it will be downloaded again next visit`;
}

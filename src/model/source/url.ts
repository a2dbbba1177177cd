// A model source over a model directory served at a URL (manifest.json and the files it lists), with the browser
// cache (cache.ts): a file is streamed from the cache when it is there and passes its check, otherwise downloaded
// while its bytes are written to the cache as they pass. The cache entry is committed only after the whole file
// verified, so an HTML error page, a truncated body or another file never enters the cache; a cached entry that
// fails its check is dropped and the file downloaded again (its chunks then start over from offset 0).
import { ManifestError, parseAnyManifest, type ManifestFile } from '../manifest.ts';
import { describeStorageError, type CacheEntryWriter, type ModelCache } from './cache.ts';
import { createModelSource, isAbort, streamPieces, verifiedChunks, type FileStreamOptions, type ModelChunk, type ModelSource } from './source.ts';

export interface UrlSourceOptions {
  /** Where downloaded files are kept between visits (cache.ts `openModelCache`); none: always download. */
  cache?: ModelCache;
  /** Problems that do not stop a read (a file that could not be cached), for the page to show. */
  onNotice?: (message: string) => void;
}

/** Fetches `<baseUrl>/manifest.json` (the fit check can look at it before any model file is fetched). */
export async function openUrlSource(baseUrl: string, options: UrlSourceOptions = {}): Promise<ModelSource> {
  const { cache, onNotice = () => undefined } = options;
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const manifest = parseAnyManifest(await (await fetchOk(`${base}manifest.json`)).text());

  async function* download(entry: ManifestFile, fileOptions: FileStreamOptions): AsyncGenerator<ModelChunk> {
    const pieces = bodyPieces(entry, await fetchOk(base + entry.path, fileOptions.signal));
    if (!cache) return yield* verifiedChunks(entry, 'network', pieces, fileOptions);
    const store = storeAsItPasses(cache.begin(entry.sha256, entry.bytes));
    let verified = false;
    try {
      yield* verifiedChunks(entry, 'network', store.tap(pieces), fileOptions);
      verified = true;
    } finally {
      if (verified) await store.commit(entry.path, onNotice);
      else store.abort();
    }
  }

  return createModelSource(manifest, async function* (entry, fileOptions) {
    const cached = await cache?.get(entry.sha256).catch(() => undefined);
    if (cached) {
      try {
        return yield* verifiedChunks(entry, 'cache', streamPieces(cached), fileOptions);
      } catch (error) {
        if (isAbort(error)) throw error;
        await cache!.delete(entry.sha256).catch(() => undefined); // corrupt entry: drop it and download again
      }
    }
    yield* download(entry, fileOptions);
  });
}

/** Writes each piece to the cache as it passes; a storage failure stops the writing and becomes one notice. */
function storeAsItPasses(writer: CacheEntryWriter) {
  let failure: { error: unknown } | undefined;
  return {
    async *tap(pieces: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
      for await (const piece of pieces) {
        if (!failure) await writer.write(piece).catch((error) => void (failure = { error }));
        yield piece;
      }
    },
    async commit(path: string, onNotice: (message: string) => void) {
      if (!failure) await writer.commit().catch((error) => void (failure = { error }));
      if (failure) onNotice(describeStorageError(path, failure.error));
    },
    abort: () => writer.abort(new Error('the file failed its check or its read was stopped')),
  };
}

/** A response body's pieces; a connection that breaks off mid-body is a ManifestError naming the file. */
async function* bodyPieces(entry: ManifestFile, response: Response): AsyncGenerator<Uint8Array> {
  try {
    yield* streamPieces(response.body ?? new Blob([]).stream());
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ManifestError(`${entry.path}: the download broke off (${(error as Error).message}); try again`);
  }
}

async function fetchOk(url: string, signal?: AbortSignal): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ManifestError(`could not fetch ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    throw new ManifestError(`could not fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  }
  return response;
}

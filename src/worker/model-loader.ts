// Loads a whole model directory into memory through a model source (src/model/source/): from a URL with the browser
// cache, or from a folder the person chose. Every file is read whole and checked against the manifest's size and
// SHA-256, with progress in bytes. The source comes back too, so a consumer can read files again (device loss, a
// swapped offset) or stream large weights to the GPU instead of keeping them.
import type { AnyManifest } from '../model/manifest.ts';
import type { ModelCache } from '../model/source/cache.ts';
import { openChosenFiles } from '../model/source/chosen-files.ts';
import type { ByteOrigin, ModelSource } from '../model/source/source.ts';
import { openUrlSource } from '../model/source/url.ts';
import { openPreparedSource } from '../model/source/opfs.ts';

export interface LoadedModel {
  manifest: AnyManifest;
  files: Map<string, Uint8Array>;
  /** Problems that did not stop the load (a file that could not be cached), for the page to show. */
  notices: string[];
  /** Where the files came from: reads them again, checked again. */
  source: ModelSource;
}

export type LoadProgress = (message: string, loaded: number, total: number) => void;

/**
 * With a `cache` (src/model/source/cache.ts), files are taken from it by SHA-256 when present and valid, and stored
 * as they download. `accept` sees the manifest before any model file is fetched (the fit check) and throws to refuse it.
 */
export async function loadModelDirectory(baseUrl: string, onProgress: LoadProgress, cache?: ModelCache, accept?: (manifest: AnyManifest) => void): Promise<LoadedModel> {
  const notices: string[] = [];
  const source = await openUrlSource(baseUrl, { cache, onNotice: (notice) => notices.push(notice) });
  accept?.(source.manifest);
  return { ...(await readEveryFile(source, onProgress)), notices };
}

/**
 * A prepared directory the person chose from disk (`<input webkitdirectory>`): nothing is uploaded, the files are
 * read here and checked against the manifest's sizes and hashes like downloaded ones.
 */
export async function loadModelFiles(chosen: readonly File[], onProgress: LoadProgress, accept?: (manifest: AnyManifest) => void): Promise<LoadedModel> {
  const source = await openChosenFiles(chosen);
  accept?.(source.manifest);
  return { ...(await readEveryFile(source, onProgress)), notices: [] };
}

/** A model prepared in this browser (origin-private file system): read and checked like a chosen folder, offline. */
export async function loadPreparedModel(modelId: string, onProgress: LoadProgress, accept?: (manifest: AnyManifest) => void): Promise<LoadedModel> {
  const source = await openPreparedSource(modelId);
  accept?.(source.manifest);
  return { ...(await readEveryFile(source, onProgress)), notices: [] };
}

const VERB: Record<ByteOrigin, string> = { network: 'downloading', cache: 'loading', file: 'reading', memory: 'reading' };

async function readEveryFile(source: ModelSource, onProgress: LoadProgress) {
  const { manifest } = source;
  const total = manifest.files.reduce((sum, f) => sum + f.bytes, 0);
  const files = new Map<string, Uint8Array>();
  let loaded = 0;
  for (const entry of manifest.files) {
    onProgress(`loading ${entry.path}`, loaded, total);
    const done = loaded;
    files.set(entry.path, await source.read(entry.path, { onBytes: (received, from) => onProgress(`${VERB[from]} ${entry.path}`, done + received, total) }));
    loaded += entry.bytes;
  }
  onProgress('model files verified', loaded, total);
  return { manifest, files, source };
}

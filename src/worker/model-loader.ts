// Opens a model directory as a model source (src/model/source/): from a URL with the browser cache, or from a folder
// the person chose. Nothing is read up front but the manifest: the engine reads what it needs through the source (on
// WebGPU streaming the UNet's weights to the GPU, DESIGN decision 7), every byte checked against the manifest's size
// and SHA-256, and reads again after a device loss or for a new η. The trainer takes every file whole (readEveryFile).
import type { AnyManifest } from '../model/manifest.ts';
import type { ModelCache } from '../model/source/cache.ts';
import { openChosenFiles } from '../model/source/chosen-files.ts';
import type { ByteOrigin, ModelSource } from '../model/source/source.ts';
import { openUrlSource } from '../model/source/url.ts';
import { openPreparedSource } from '../model/source/opfs.ts';

/** A model opened for loading: its source (files are read, streamed and checked as the engine asks) and its notices. */
export interface OpenedModel {
  source: ModelSource;
  /** Problems that do not stop the load (a file that could not be cached), filled as files are read, for the page. */
  notices: string[];
}

export type LoadProgress = (message: string, loaded: number, total: number) => void;

/**
 * A model directory by URL. With a `cache` (src/model/source/cache.ts), files are taken from it by SHA-256 when present
 * and valid, and stored as they download. `accept` sees the manifest before any model file is fetched (the fit check)
 * and throws to refuse it.
 */
export async function openModelUrl(baseUrl: string, cache?: ModelCache, accept?: (manifest: AnyManifest) => void): Promise<OpenedModel> {
  const notices: string[] = [];
  const source = await openUrlSource(baseUrl, { cache, onNotice: (notice) => notices.push(notice) });
  accept?.(source.manifest);
  return { source, notices };
}

/**
 * A prepared directory the person chose from disk (`<input webkitdirectory>`): nothing is uploaded, the files are
 * read here and checked against the manifest's sizes and hashes like downloaded ones.
 */
export async function openModelFolder(chosen: readonly File[], accept?: (manifest: AnyManifest) => void): Promise<OpenedModel> {
  const source = await openChosenFiles(chosen);
  accept?.(source.manifest);
  return { source, notices: [] };
}

/** A model prepared in this browser (origin-private file system): read and checked like a chosen folder, offline. */
export async function openPreparedModel(modelId: string, accept?: (manifest: AnyManifest) => void): Promise<OpenedModel> {
  const source = await openPreparedSource(modelId);
  accept?.(source.manifest);
  return { source, notices: [] };
}

const VERB: Record<ByteOrigin, string> = { network: 'downloading', cache: 'loading', file: 'reading', memory: 'reading' };

/** Every file of the model whole, checked, with byte progress (what the trainer's sessions take). */
export async function readEveryFile(source: ModelSource, onProgress: LoadProgress): Promise<Map<string, Uint8Array>> {
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
  return files;
}

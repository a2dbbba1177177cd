// A model source over files already in memory (tests, Node tools that built a model in memory): the bytes are still
// checked against the manifest on every read, and chunks are views of the given arrays (no copies).
import { ManifestError, type AnyManifest } from '../manifest.ts';
import { createModelSource, positionalPieces, verifiedChunks, type ModelSource } from './source.ts';

export function memorySource(manifest: AnyManifest, files: ReadonlyMap<string, Uint8Array>): ModelSource {
  return createModelSource(manifest, async function* (entry, options) {
    const bytes = files.get(entry.path);
    if (!bytes) throw new ManifestError(`${entry.path} is listed in the manifest but was not provided`);
    const pieces = positionalPieces(entry, bytes.byteLength, options.chunkBytes, (start, end) => bytes.subarray(start, end));
    yield* verifiedChunks(entry, 'memory', pieces, options);
  });
}

// A model source over a prepared directory the person chose from disk (`<input webkitdirectory>`): nothing is
// uploaded; the files are read in slices (Blob.slice) and checked against the manifest like downloaded ones.
import { ManifestError, parseAnyManifest } from '../manifest.ts';
import { createModelSource, positionalPieces, verifiedChunks, type ModelSource } from './source.ts';

/** A Blob is read this many bytes at a time, so progress shows while a large file is read and hashed. */
const SLICE_BYTES = 16 << 20;

export async function openChosenFiles(chosen: readonly File[]): Promise<ModelSource> {
  const byPath = new Map(chosen.map((f) => [relativePath(f), f]));
  const manifestFile = byPath.get('manifest.json');
  if (!manifestFile) throw new ManifestError(`the chosen folder has no manifest.json at its top (${chosen.length} files); choose the folder prepare-model wrote`);
  const manifest = parseAnyManifest(await manifestFile.text());
  return createModelSource(manifest, async function* (entry, options) {
    const file = byPath.get(entry.path);
    if (!file) throw new ManifestError(`${entry.path} is listed in the manifest but missing from the chosen folder`);
    const slice = async (start: number, end: number) => new Uint8Array(await file.slice(start, end).arrayBuffer());
    yield* verifiedChunks(entry, 'file', positionalPieces(entry, file.size, Math.min(SLICE_BYTES, options.chunkBytes), slice), options);
  });
}

/** The path inside the chosen folder: webkitRelativePath is `<folder>/<path>`. */
const relativePath = (f: File) => (f.webkitRelativePath ? f.webkitRelativePath.split('/').slice(1).join('/') : f.name);

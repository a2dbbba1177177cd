// Node only: a model source over a model directory on disk (manifest.json and the files it lists), read with
// positioned reads in bounded pieces and checked against the manifest like every other source.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManifestError, parseAnyManifest } from '../manifest.ts';
import { createModelSource, positionalPieces, verifiedChunks, type ModelSource } from './source.ts';

/** Bytes per read() call: bounded, so a large file shows progress and never needs one 2 GB read. */
const READ_BYTES = 16 << 20;

export async function openModelDirectory(dir: string): Promise<ModelSource> {
  const manifest = parseAnyManifest(await readFile(join(dir, 'manifest.json'), 'utf8'));
  return createModelSource(manifest, async function* (entry, options) {
    const handle = await open(join(dir, entry.path), 'r').catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? new ManifestError(`${entry.path} is listed in the manifest but missing from ${dir}`) : error;
    });
    try {
      const readRange = async (start: number, end: number) => {
        const bytes = new Uint8Array(end - start);
        let at = 0;
        while (at < bytes.byteLength) {
          const { bytesRead } = await handle.read(bytes, at, bytes.byteLength - at, start + at);
          if (bytesRead === 0) break; // the file shrank while being read: the check reports it short
          at += bytesRead;
        }
        return bytes.subarray(0, at);
      };
      const pieces = positionalPieces(entry, (await handle.stat()).size, Math.min(READ_BYTES, options.chunkBytes), readRange);
      yield* verifiedChunks(entry, 'file', pieces, options);
    } finally {
      await handle.close();
    }
  });
}

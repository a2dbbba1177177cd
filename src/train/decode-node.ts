// Pair sources in Node (`npm run train -- --pairs <folder | .zip | .parquet | pairs.json>`, tests): the files, and
// image decoding, PNG, JPEG and WebP to RGBA, with sharp (libvips: libspng, libjpeg-turbo, libwebp). Only the decoding is sharp's; the resize is ours (image-prep.ts, Pillow's filter). Sharp
// refuses images over MAX_IMAGE_PIXELS from their headers, before decoding them, and ignores EXIF orientation as
// PIL's Image.open does. Loaded lazily so that nothing of it reaches the browser bundle.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { RgbaImage } from './image-prep.ts';
import {
  encodedPairsFromFolder, encodedPairsFromParquet, MAX_IMAGE_PIXELS, MAX_ZIP_BYTES, pairSetFrom, zipFolderFiles,
  type EncodedPairs, type FolderFiles, type ImageDecoder, type PairSet,
} from './pair-sources.ts';
import { MAX_PAIRS_CHARS, PairsError } from './pairs.ts';

export const decodeImageNode: ImageDecoder = async (bytes) => {
  const { default: sharp } = await import('sharp');
  const { data, info } = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'error' })
    .ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 4) throw new Error(`decoded to ${info.channels} channels`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) } satisfies RgbaImage;
};

/** A directory's files (recursively), by '/'-separated path relative to it, read on demand. */
export async function folderFilesNode(root: string): Promise<FolderFiles> {
  const files = new Map<string, () => Promise<Uint8Array>>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(root, path).split(sep).join('/'), async () => new Uint8Array(await readFile(path)));
  }
  return files;
}

/**
 * A pairs source at `path` as a pairs file value for `decodePairs`: a folder, a .zip, a .parquet shard (images at
 * `size`²), or a pairs.json (returned as its text, to be parsed at its own size).
 */
export async function readPairsSourceNode(path: string, size: number, maxPairs?: number): Promise<PairSet | { json: string }> {
  const opened = await openPairsSourceNode(path);
  if ('json' in opened) return opened;
  try {
    return await pairSetFrom(opened.source, path, { size, decode: decodeImageNode, maxPairs });
  } finally {
    await opened.close();
  }
}

/**
 * A pairs source at `path`, opened: a folder's, .zip's or .parquet shard's pairs with their images undecoded (`close`
 * releases the shard's file handle once they are read), or a pairs.json's text.
 */
export async function openPairsSourceNode(path: string): Promise<{ source: EncodedPairs; close: () => Promise<void> } | { json: string }> {
  const info = await stat(path);
  const nothingToClose = async () => {};
  if (info.isDirectory()) return { source: await encodedPairsFromFolder(await folderFilesNode(path), path), close: nothingToClose };
  const lower = path.toLowerCase();
  if (lower.endsWith('.zip')) {
    if (info.size > MAX_ZIP_BYTES) throw new PairsError(`${path} is ${info.size} bytes; zips over ${MAX_ZIP_BYTES} bytes are refused`);
    return { source: await encodedPairsFromFolder(zipFolderFiles(new Uint8Array(await readFile(path)), path), path), close: nothingToClose };
  }
  if (lower.endsWith('.parquet')) {
    const handle = await open(path);
    const file = { byteLength: info.size, slice: async (start: number, end = info.size) => {
      const buffer = new Uint8Array(end - start);
      await handle.read(buffer, 0, buffer.length, start);
      return buffer.buffer;
    } };
    try {
      return { source: await encodedPairsFromParquet(file, path), close: () => handle.close() };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }
  if (info.size > MAX_PAIRS_CHARS) throw new PairsError(`${path} is ${info.size} bytes; pairs files over ${MAX_PAIRS_CHARS} are refused`);
  return { json: await readFile(path, 'utf8') };
}

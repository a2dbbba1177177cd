// Image decoding for Node (`npm run train`, tests): PNG, JPEG and WebP to RGBA with sharp (libvips: libspng,
// libjpeg-turbo, libwebp). Only the decoding is sharp's; the resize is ours (image-prep.ts, Pillow's filter). Sharp
// refuses images over MAX_IMAGE_PIXELS from their headers, before decoding them, and ignores EXIF orientation as
// PIL's Image.open does. Loaded lazily so that nothing of it reaches the browser bundle.
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { RgbaImage } from './image-prep.ts';
import { MAX_IMAGE_PIXELS, type FolderFiles, type ImageDecoder } from './pair-sources.ts';

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

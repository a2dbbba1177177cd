// What a person gives the training panel, turned into a pair source: a pairs.json, a .zip or a Pick-a-Pic .parquet
// chosen as a file, a folder chosen with the folder picker (webkitdirectory), or any of these dropped on the panel
// (a dropped folder is walked with the File and Directory Entries API). Images are decoded by the browser
// (createImageBitmap, no colour-space conversion, alpha not premultiplied) and prepared by src/train/pair-sources.ts.
import type { AsyncBuffer } from 'hyparquet';
import { MAX_IMAGE_PIXELS, MAX_ZIP_BYTES, pairsFromFolder, pairsFromParquet, pairsFromZip, type FolderFiles, type ImageDecoder, type PairSet } from '../train/pair-sources.ts';
import { MAX_PAIRS_CHARS, PairsError } from '../train/pairs.ts';
import { droppedItems, folderFromInput } from './page-files.ts';

/** A source ready to be read at a training size; a pairs.json is passed on as its text. */
export interface PairSource {
  name: string;
  read(size: number, onPair?: (count: number) => void): Promise<PairSet | { json: string }>;
}

export const decodeImageBrowser: ImageDecoder = async (bytes) => {
  const bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    const { width, height } = bitmap;
    if (width * height > MAX_IMAGE_PIXELS) throw new Error(`${width}×${height} pixels; the limit is ${MAX_IMAGE_PIXELS}`);
    const context = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true })!;
    context.drawImage(bitmap, 0, 0);
    return { width, height, data: context.getImageData(0, 0, width, height).data };
  } finally {
    bitmap.close();
  }
};

/** A single chosen or dropped file: pairs.json, .zip or .parquet. */
export function sourceFromFile(file: File): PairSource {
  const lower = file.name.toLowerCase();
  const read = async (size: number, onPair?: (count: number) => void) => {
    const options = { size, decode: decodeImageBrowser, onPair };
    if (lower.endsWith('.zip')) {
      if (file.size > MAX_ZIP_BYTES) throw new PairsError(`${file.name} is ${file.size} bytes; zips over ${MAX_ZIP_BYTES} bytes are refused`);
      return pairsFromZip(new Uint8Array(await file.arrayBuffer()), file.name, options);
    }
    if (lower.endsWith('.parquet')) {
      const buffer: AsyncBuffer = { byteLength: file.size, slice: (start, end) => file.slice(start, end).arrayBuffer() };
      return pairsFromParquet(buffer, file.name, options);
    }
    if (file.size > MAX_PAIRS_CHARS) throw new PairsError(`${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MiB; pairs files over ${MAX_PAIRS_CHARS / 2 ** 20} MiB are refused`);
    return { json: await file.text() };
  };
  return { name: file.name, read };
}

/** A folder from `<input webkitdirectory>`: paths relative to the chosen folder (its own name stripped). */
export function sourceFromFolderInput(files: FileList): PairSource {
  const folder = folderFromInput(files);
  return sourceFromFolder(folder.name, folder.files);
}

function sourceFromFolder(name: string, files: ReadonlyMap<string, File>): PairSource {
  const folder: FolderFiles = new Map([...files].map(([path, file]) => [path, async () => new Uint8Array(await file.arrayBuffer())]));
  return { name, read: (size, onPair) => pairsFromFolder(folder, name, { size, decode: decodeImageBrowser, onPair }) };
}

/** What was dropped: one folder (walked) or one file. */
export async function sourceFromDrop(data: DataTransfer): Promise<PairSource | undefined> {
  const { folders, files } = await droppedItems(data);
  if (folders[0]) return sourceFromFolder(folders[0].name, folders[0].files);
  return files[0] ? sourceFromFile(files[0]) : undefined;
}

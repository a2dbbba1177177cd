// Preparation input from files the person chose or dropped in the page (`<input webkitdirectory>` or a dropped folder
// for an export or a UNet folder, `<input type=file>` or a dropped file for a LoRA): read in byte ranges with Blob.slice, nothing uploaded (io.ts InputFolder).
import type { InputFolder } from './io.ts';

/** A folder chosen or dropped in the page, its files by their paths inside it; `name` is its label. */
export function chosenFolder(name: string, byPath: ReadonlyMap<string, File>): InputFolder {
  const label = name || '(no files)';
  return {
    label,
    name: (path) => (name ? `${name}/${path}` : path),
    size: async (path) => byPath.get(path)?.size,
    async read(path, start, end) {
      const file = byPath.get(path);
      if (!file) throw new Error(`${label}/${path}: no such file`);
      const bytes = new Uint8Array(await file.slice(start, end).arrayBuffer());
      if (bytes.length !== end - start) throw new Error(`${label}/${path}: the file ended after ${start + bytes.length} bytes (it changed on disk?)`);
      return bytes;
    },
  };
}

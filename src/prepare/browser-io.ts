// Preparation input from files the person chose in the page (`<input webkitdirectory>` for an export or a UNet
// folder, `<input type=file>` for a LoRA): read in byte ranges with Blob.slice, nothing uploaded (io.ts InputFolder).
import type { InputFolder } from './io.ts';

/**
 * The chosen files as one folder. webkitRelativePath is `<chosen folder>/<path>`: the chosen folder is the top, and
 * its name is the label. A single file chosen without a folder is at the top under its own name.
 */
export function chosenFolder(files: readonly File[]): InputFolder {
  const top = files[0]?.webkitRelativePath.split('/')[0] ?? '';
  const byPath = new Map(files.map((f) => [f.webkitRelativePath ? f.webkitRelativePath.split('/').slice(1).join('/') : f.name, f]));
  const label = top || files[0]?.name || '(no files)';
  return {
    label,
    name: (path) => `${top ? `${top}/` : ''}${path}`,
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

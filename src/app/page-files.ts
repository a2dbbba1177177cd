// Files a person gives the page, as folders: chosen with `<input webkitdirectory>` (webkitRelativePath is
// `<folder>/<path>`) or dropped (each dropped folder walked with the File and Directory Entries API). Nothing is read
// here: a File is a handle on the disk, read later in slices by whoever takes it.

/** A folder: its name and every file in it by its path inside it ("unet/model.onnx"). */
export interface PageFolder {
  name: string;
  files: Map<string, File>;
}

/** Most files taken from one dropped folder. */
export const MAX_FOLDER_FILES = 200_000;

/** The files of one folder chosen with `<input webkitdirectory>`; a plain file list is one folder of its files. */
export function folderFromInput(list: FileList | readonly File[]): PageFolder {
  const files = [...list];
  const name = files[0]?.webkitRelativePath.split('/')[0] || files[0]?.name || 'folder';
  return { name, files: new Map(files.map((f) => [f.webkitRelativePath ? f.webkitRelativePath.split('/').slice(1).join('/') : f.name, f])) };
}

/** What was dropped: the folders (walked) and the files beside them. */
export async function droppedItems(data: DataTransfer): Promise<{ folders: PageFolder[]; files: File[] }> {
  // Entries first, synchronously: a DataTransfer's items are gone once the drop handler yields.
  const entries = [...data.items].map((item) => item.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => !!e);
  const folders: PageFolder[] = [];
  const files: File[] = [];
  if (entries.length === 0) return { folders, files: [...data.files] }; // a DataTransfer made by script has no entries
  for (const entry of entries) {
    if (entry.isDirectory) {
      const found = new Map<string, File>();
      await walk(entry as FileSystemDirectoryEntry, '', found);
      folders.push({ name: entry.name, files: found });
    } else files.push(await fileOf(entry as FileSystemFileEntry));
  }
  return { folders, files };
}

const fileOf = (entry: FileSystemFileEntry) => new Promise<File>((resolve, reject) => entry.file(resolve, reject));

async function walk(directory: FileSystemDirectoryEntry, prefix: string, out: Map<string, File>) {
  const reader = directory.createReader();
  for (;;) {
    // readEntries answers in batches (100 in Chromium) until it gives an empty one
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return;
    for (const entry of batch) {
      if (out.size >= MAX_FOLDER_FILES) throw new Error(`${directory.name}: more than ${MAX_FOLDER_FILES} files`);
      if (entry.isDirectory) await walk(entry as FileSystemDirectoryEntry, `${prefix}${entry.name}/`, out);
      else out.set(`${prefix}${entry.name}`, await fileOf(entry as FileSystemFileEntry));
    }
  }
}

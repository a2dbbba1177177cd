// Prepared models kept in the browser's origin-private file system (OPFS), under `prepared-models/<id>/`: written
// by the page's prepare worker (src/prepare/, as `npm run prepare-model` writes a folder), read back as a model
// source like any other (the engine loads it as it loads a URL or a chosen folder; every byte is checked against
// the manifest), listed for the model picker with no network, and removed to free the storage.
// A folder is a finished model only once its manifest.json is there: preparation writes it last, after the read-back
// verification. Anything else found there (an interrupted preparation, a folder an older version left, a manifest
// that does not parse) is listed as a leftover with its size, so the page can say what it is and remove it.
import type { OutputFile, OutputTarget, OutputWork } from '../../prepare/io.ts';
import { parseAnyManifest, type AnyManifest } from '../manifest.ts';
import { createModelSource, positionalPieces, verifiedChunks, type ModelSource } from './source.ts';

export const PREPARED_DIR = 'prepared-models';
/** Blobs are read this many bytes at a time (progress shows while a large shard is read and hashed). */
const SLICE_BYTES = 16 << 20;

export interface PreparedEntry {
  id: string;
  /** Bytes the folder takes. */
  bytes: number;
  /** The model's name, when the folder holds a finished model. */
  name?: string;
  manifest?: AnyManifest;
  /** Why the folder is not a usable model (unfinished, or its manifest is not one this version reads). */
  leftover?: string;
}

/** Ids are made by `newPreparedId`; any other folder name is a leftover of something else. */
const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,80}$/;

export function newPreparedId(name: string, now = Date.now()): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'model';
  return `${slug}-${now.toString(36)}`;
}

/** What a folder under prepared-models/ is, from its name, its manifest.json (if any) and its size. Hostile input. */
export function describePreparedFolder(id: string, manifestText: string | undefined, bytes: number): PreparedEntry {
  if (!ID_PATTERN.test(id)) return { id, bytes, leftover: 'not a folder this page made' };
  if (manifestText === undefined) return { id, bytes, leftover: 'an unfinished preparation (no manifest.json): remove it, or prepare again' };
  try {
    const manifest = parseAnyManifest(manifestText);
    return { id, bytes, name: manifest.name, manifest };
  } catch (error) {
    return { id, bytes, leftover: `its manifest.json is not one this version reads (${(error as Error).message.slice(0, 200)})` };
  }
}

export async function preparedRoot(): Promise<FileSystemDirectoryHandle> {
  if (!navigator.storage?.getDirectory) throw new Error('this browser has no origin-private file system (OPFS): prepared models cannot be kept here');
  return (await navigator.storage.getDirectory()).getDirectoryHandle(PREPARED_DIR, { create: true });
}

/** Every folder under prepared-models/, finished models first. */
export async function listPrepared(): Promise<PreparedEntry[]> {
  const root = await preparedRoot();
  const entries: PreparedEntry[] = [];
  for await (const [id, handle] of directoryEntries(root)) {
    if (handle.kind !== 'directory') {
      entries.push({ id, bytes: (await (handle as FileSystemFileHandle).getFile()).size, leftover: 'a stray file' });
      continue;
    }
    const dir = handle as FileSystemDirectoryHandle;
    const manifest = await dir.getFileHandle('manifest.json').then((h) => h.getFile()).then((f) => f.text()).catch(() => undefined);
    entries.push(describePreparedFolder(id, manifest, await folderBytes(dir)));
  }
  return entries.sort((a, b) => Number(!!a.leftover) - Number(!!b.leftover) || a.id.localeCompare(b.id));
}

/** Removes a folder (a model or a leftover); returns the bytes it took. */
export async function removePrepared(id: string): Promise<number> {
  const root = await preparedRoot();
  const handle = await root.getDirectoryHandle(id).catch(() => undefined);
  const bytes = handle ? await folderBytes(handle) : 0;
  await root.removeEntry(id, { recursive: true });
  return bytes;
}

/** A finished prepared model as a model source: files read in slices and checked against its manifest. */
export async function openPreparedSource(id: string): Promise<ModelSource> {
  const dir = await (await preparedRoot()).getDirectoryHandle(id).catch(() => {
    throw new Error(`no prepared model "${id}" in this browser's storage (removed, or the site's data was cleared)`);
  });
  const entry = describePreparedFolder(id, await fileOf(dir, 'manifest.json').then((f) => f.text()).catch(() => undefined), 0);
  if (!entry.manifest) throw new Error(`prepared model "${id}": ${entry.leftover}`);
  return createModelSource(entry.manifest, async function* (file, options) {
    const blob = await fileOf(dir, file.path).catch(() => {
      throw new Error(`prepared model "${id}": ${file.path} is listed in its manifest but missing from browser storage`);
    });
    const slice = async (start: number, end: number) => new Uint8Array(await blob.slice(start, end).arrayBuffer());
    yield* verifiedChunks(file, 'file', positionalPieces(file, blob.size, Math.min(SLICE_BYTES, options.chunkBytes), slice), options);
  });
}

/**
 * Where the prepare worker writes: prepared-models/<id>/. Nothing is replaced (each preparation has its own id);
 * the manifest, written last, makes the folder a model; abort removes the folder.
 */
export function preparedOutput(id: string): OutputTarget {
  return {
    label: `browser storage (${PREPARED_DIR}/${id})`,
    async begin(): Promise<OutputWork> {
      const root = await preparedRoot();
      await root.removeEntry(id, { recursive: true }).catch(() => undefined);
      const top = await root.getDirectoryHandle(id, { create: true });
      const written = new Map<string, number>();
      return {
        label: `${PREPARED_DIR}/${id}`,
        async create(path) {
          const parts = path.split('/');
          let dir = top;
          for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part, { create: true });
          const handle = await dir.getFileHandle(parts.at(-1)!, { create: true });
          written.set(path, 0);
          return openWriter(handle, (bytes) => written.set(path, bytes));
        },
        async read(path, start, end) {
          return new Uint8Array(await (await fileOf(top, path)).slice(start, end).arrayBuffer());
        },
        list: async () => [...written].map(([path, bytes]) => ({ path, bytes })),
        commit: async () => undefined,
        abort: () => root.removeEntry(id, { recursive: true }).catch(() => undefined),
      };
    },
  };
}

/**
 * A file written front to back: through a synchronous access handle where there is one (dedicated workers: written
 * in place, no copy), else a writable stream.
 */
async function openWriter(handle: FileSystemFileHandle, onSize: (bytes: number) => void): Promise<OutputFile> {
  const withSync = handle as FileSystemFileHandle & { createSyncAccessHandle?: () => Promise<SyncHandle> };
  let position = 0;
  if (typeof withSync.createSyncAccessHandle === 'function') {
    const sync = await withSync.createSyncAccessHandle();
    sync.truncate(0);
    return {
      async write(bytes) {
        for (let done = 0; done < bytes.length;) done += sync.write(bytes.subarray(done), { at: position + done });
        position += bytes.length;
        onSize(position);
      },
      async close() {
        sync.flush();
        sync.close();
      },
    };
  }
  const writable = await handle.createWritable();
  return {
    async write(bytes) {
      await writable.write(bytes as Uint8Array<ArrayBuffer>);
      position += bytes.length;
      onSize(position);
    },
    close: () => writable.close(),
  };
}

interface SyncHandle {
  write(bytes: Uint8Array, options: { at: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}

async function fileOf(top: FileSystemDirectoryHandle, path: string): Promise<File> {
  const parts = path.split('/');
  let dir = top;
  for (const part of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(part);
  return (await dir.getFileHandle(parts.at(-1)!)).getFile();
}

async function folderBytes(dir: FileSystemDirectoryHandle): Promise<number> {
  let bytes = 0;
  for await (const [, handle] of directoryEntries(dir)) {
    bytes += handle.kind === 'directory' ? await folderBytes(handle as FileSystemDirectoryHandle) : (await (handle as FileSystemFileHandle).getFile()).size;
  }
  return bytes;
}

/** A directory's entries (the async iterator TypeScript's DOM types leave out). */
const directoryEntries = (dir: FileSystemDirectoryHandle) =>
  (dir as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries();

// Where preparation reads and writes, so that one implementation (prepare.ts) runs in Node (the prepare-model CLI:
// folders on disk, node-io.ts) and in the page's prepare worker (chosen files, the Hugging Face Hub, the browser's
// origin-private file system: src/prepare/browser-io.ts, hub-folder.ts, src/model/source/opfs.ts).
// Inputs are read-only folders read by byte range: a 3.4 GB `weights.pb` is never whole in memory, and a network
// folder can serve the ranges as they stream. Output is a folder written front to back, file by file, and read back
// for verification; it becomes the prepared model only when `commit` runs after everything verified.

/** A read-only folder of input files (an ONNX export, a diffusers UNet folder, the folder of a LoRA file). */
export interface InputFolder {
  /** What the manifest's `source` records and messages name: a path on disk, a folder's name, `hub:<repo>@<rev>`. */
  readonly label: string;
  /** How messages name one of its files. */
  name(path: string): string;
  /** The file's size in bytes, or undefined when there is no such file. `path` is relative, '/'-separated. */
  size(path: string): Promise<number | undefined>;
  /** Bytes [start, end) of a file; a file that turns out shorter is an error naming it. */
  read(path: string, start: number, end: number): Promise<Uint8Array>;
}

/** A file being written, front to back. */
export interface OutputFile {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** The folder a preparation writes into (a work folder: not yet the prepared model). */
export interface OutputFolder {
  readonly label: string;
  /** A new, empty file (its parent folders are made). */
  create(path: string): Promise<OutputFile>;
  /** Bytes [start, end) of a written file (read back for verification, θ for a dense η). */
  read(path: string, start: number, end: number): Promise<Uint8Array>;
  /** Every written file with its size, in any order. */
  list(): Promise<{ path: string; bytes: number }[]>;
}

export interface OutputWork extends OutputFolder {
  /** Makes the written folder the prepared model (after everything verified). */
  commit(): Promise<void>;
  /** Drops everything written (a failure or a cancel): an earlier model is left as it was. */
  abort(): Promise<void>;
}

/** Where the prepared model goes: refused (`begin` throws) before anything is written when it cannot go there. */
export interface OutputTarget {
  readonly label: string;
  begin(): Promise<OutputWork>;
}

/** A LoRA file given for η or δ, with the scale its ΔW is applied with (`--delta-lora path[:scale]`). */
export interface LoraInput {
  folder: InputFolder;
  path: string;
  scale: number;
}

export async function exists(folder: InputFolder, path: string): Promise<boolean> {
  return (await folder.size(path)) !== undefined;
}

/** A whole input file; a missing one is an error naming it. */
export async function readWhole(folder: InputFolder, path: string): Promise<Uint8Array> {
  const size = await folder.size(path);
  if (size === undefined) throw new Error(`${folder.name(path)}: no such file`);
  return folder.read(path, 0, size);
}

export async function readText(folder: InputFolder, path: string): Promise<string> {
  return new TextDecoder().decode(await readWhole(folder, path));
}

/** A path inside a folder: relative, '/'-separated, no '.' or '..' segment (names from hostile files pass here). */
export function joinPath(...parts: string[]): string {
  const segments = parts.flatMap((p) => p.split('/')).filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new Error(`${parts.join('/')}: a path may not leave its folder`);
  return segments.join('/');
}

/** The folder part of a relative path ('' at the top). */
export const parentPath = (path: string) => path.split('/').slice(0, -1).join('/');

/**
 * The order prepare-model has always listed a prepared folder's files in (manifest.files): a walk that sorts each
 * folder's names, so `unet/x` comes before `unet-x` (segment by segment, not by the whole string).
 */
export function walkOrder(a: string, b: string): number {
  const [sa, sb] = [a.split('/'), b.split('/')];
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    if (sa[i] !== sb[i]) return sa[i] < sb[i] ? -1 : 1;
  }
  return sa.length - sb.length;
}

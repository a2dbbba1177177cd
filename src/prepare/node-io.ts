// Node only: preparation's folders on disk (io.ts), and the prepare-model CLI's entry point over paths. Inputs are
// read with positioned reads; the output is written into a fresh sibling folder that replaces --out only once the
// prepared model is written and verified, so a failed or cancelled run leaves --out as it was.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { InputFolder, LoraInput, OutputTarget, OutputWork } from './io.ts';
import { prepareModel, type LoraArg, type PrepareOptions, type PrepareResult } from './prepare.ts';

/** A folder on disk as preparation input; its label is the path as given (the manifest's provenance). */
export function nodeFolder(dir: string): InputFolder {
  return {
    label: dir,
    name: (path) => join(dir, path),
    async size(path) {
      try {
        const s = await stat(join(dir, path));
        return s.isFile() ? s.size : undefined;
      } catch {
        return undefined;
      }
    },
    async read(path, start, end) {
      const handle = await open(join(dir, path), 'r');
      try {
        return await readExactly(handle, start, end, join(dir, path));
      } finally {
        await handle.close();
      }
    },
  };
}

async function readExactly(handle: FileHandle, start: number, end: number, what: string): Promise<Uint8Array> {
  const out = new Uint8Array(end - start);
  for (let done = 0; done < out.length;) {
    const { bytesRead } = await handle.read(out, done, out.length - done, start + done);
    if (bytesRead === 0) throw new Error(`${what}: file ended after ${start + done} bytes while reading ${out.length} bytes at ${start}`);
    done += bytesRead;
  }
  return out;
}

/** A LoRA file path as preparation input (its folder, its name). */
export const nodeLora = ({ path, scale }: LoraArg): LoraInput => ({ folder: nodeFolder(dirname(path)), path: basename(path), scale });

/**
 * `out` on disk. It must be absent, empty, or a model prepared before (its manifest says format 2): any other folder
 * is refused rather than overwritten.
 */
export function nodeOutput(out: string): OutputTarget {
  return {
    label: out,
    async begin() {
      if (existsSync(out)) {
        if (!(await stat(out)).isDirectory()) throw new Error(`--out ${out} exists and is not a folder`);
        if ((await readdir(out)).length > 0 && !isPreparedFolder(out)) {
          throw new Error(`--out ${out} is not empty and holds no prepared model; choose a new folder (nothing was written)`);
        }
      }
      const work = `${out.replace(/[\\/]+$/, '')}.partial-${process.pid}`;
      await rm(work, { recursive: true, force: true });
      await mkdir(work, { recursive: true });
      return workFolder(out, work);
    },
  };
}

function workFolder(out: string, work: string): OutputWork {
  return {
    label: out,
    async create(path) {
      const file = join(work, path);
      await mkdir(dirname(file), { recursive: true });
      const handle = await open(file, 'w');
      let position = 0;
      return {
        async write(bytes) {
          for (let done = 0; done < bytes.length;) done += (await handle.write(bytes, done, bytes.length - done, position + done)).bytesWritten;
          position += bytes.length;
        },
        close: () => handle.close(),
      };
    },
    async read(path, start, end) {
      const handle = await open(join(work, path), 'r');
      try {
        return await readExactly(handle, start, end, join(out, path));
      } finally {
        await handle.close();
      }
    },
    async list() {
      const files: { path: string; bytes: number }[] = [];
      for (const entry of await readdir(work, { recursive: true, withFileTypes: true })) {
        if (!entry.isFile()) continue;
        const full = join(entry.parentPath, entry.name);
        files.push({ path: relative(work, full).split(sep).join('/'), bytes: (await stat(full)).size });
      }
      return files;
    },
    async commit() {
      const old = work.replace(/\.partial-/, '.replaced-');
      const replacing = existsSync(out);
      if (replacing) await rename(out, old);
      await rename(work, out);
      if (replacing) await rm(old, { recursive: true, force: true });
    },
    abort: () => rm(work, { recursive: true, force: true }),
  };
}

function isPreparedFolder(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))?.format === 2;
  } catch {
    return false;
  }
}

/** prepare-model's options as paths on disk (the CLI's and the tests' form). */
export interface PreparePaths extends Omit<PrepareOptions, 'onnx' | 'out' | 'etaUnet' | 'vae' | 'etaLora' | 'deltaLora'> {
  onnx: string;
  out: string;
  etaUnet?: string;
  vae?: string;
  etaLora?: string | readonly LoraArg[];
  deltaLora?: string | readonly LoraArg[];
}

const loraArgs = (given: PreparePaths['etaLora']): readonly LoraArg[] => (given === undefined ? [] : typeof given === 'string' ? [{ path: given, scale: 1 }] : given);

/** Prepares from folders on disk into `out` (what `npm run prepare-model` runs). */
export async function prepareFromPaths(options: PreparePaths): Promise<PrepareResult> {
  if (!existsSync(options.onnx)) throw new Error(`export folder ${options.onnx} does not exist`);
  return prepareModel({
    ...options,
    onnx: nodeFolder(options.onnx),
    out: nodeOutput(options.out),
    etaUnet: options.etaUnet === undefined ? undefined : nodeFolder(options.etaUnet),
    vae: options.vae === undefined ? undefined : nodeFolder(options.vae),
    etaLora: loraArgs(options.etaLora).map(nodeLora),
    deltaLora: loraArgs(options.deltaLora).map(nodeLora),
  });
}

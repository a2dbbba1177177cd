// Node only: reads a model directory (manifest.json, either format, and every file it lists) from disk for the CLIs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAnyManifest, type AnyManifest } from '../model/manifest.ts';

export interface ModelDirectory {
  dir: string;
  manifest: AnyManifest;
  files: Map<string, Uint8Array>;
}

/** Reads a model directory (manifest.json and every file it lists) from disk, checking each file's size. */
export function readModelDirectory(dir: string): ModelDirectory {
  const manifest = parseAnyManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const files = new Map(manifest.files.map((f) => {
    const bytes = new Uint8Array(readFileSync(join(dir, f.path)));
    if (bytes.byteLength !== f.bytes) throw new Error(`${join(dir, f.path)}: ${bytes.byteLength} bytes, the manifest says ${f.bytes} (truncated or replaced file)`);
    return [f.path, bytes];
  }));
  return { dir, manifest, files };
}

// Node only: reads a model directory (manifest.json, either format, and every file it lists) from disk for the CLIs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPrepared, offsetFiles, parseAnyManifest, type AnyManifest } from '../model/manifest.ts';

export interface ModelDirectory {
  dir: string;
  manifest: AnyManifest;
  files: Map<string, Uint8Array>;
}

/**
 * Reads a model directory (manifest.json and every file it lists) from disk, checking each file's size. With
 * `offsets: false` a prepared model's η and δ files are left unread: training starts from θ and never reads them, and a
 * dense η is as large as the UNet.
 */
export function readModelDirectory(dir: string, { offsets = true }: { offsets?: boolean } = {}): ModelDirectory {
  const manifest = parseAnyManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const unread = new Set(!offsets && isPrepared(manifest) ? Object.values(manifest.offsets).flatMap((o) => (o ? offsetFiles(o) : [])) : []);
  const files = new Map(manifest.files.filter((f) => !unread.has(f.path)).map((f) => {
    const bytes = new Uint8Array(readFileSync(join(dir, f.path)));
    if (bytes.byteLength !== f.bytes) throw new Error(`${join(dir, f.path)}: ${bytes.byteLength} bytes, the manifest says ${f.bytes} (truncated or replaced file)`);
    return [f.path, bytes];
  }));
  return { dir, manifest, files };
}

// Samples a model directory in Node with the same engine the browser worker runs (src/worker/engine.ts on
// onnxruntime-node): used to make preference pairs and to evaluate configurations (`npm run reproduce`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseManifest, type ModelManifest } from '../model/manifest.ts';
import { createEngine, type Engine } from '../worker/engine.ts';

export interface ModelDirectory {
  dir: string;
  manifest: ModelManifest;
  files: Map<string, Uint8Array>;
}

export function readModelDirectory(dir: string): ModelDirectory {
  const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))]));
  return { dir, manifest, files };
}

/** An engine on the model with only the named LoRAs (η and/or δ) loaded; the others are zero. */
export function engineWith(model: ModelDirectory, loras: { eta?: Uint8Array; delta?: Uint8Array }): Promise<Engine> {
  const files = new Map(model.files);
  const entries: ModelManifest['loras'] = {};
  for (const role of ['eta', 'delta'] as const) {
    const bytes = loras[role];
    if (!bytes) continue;
    files.set(`${role}.safetensors`, bytes);
    entries[role] = { file: `${role}.safetensors`, role, rank: 0, description: role };
  }
  return createEngine(ort, { ...model.manifest, loras: entries }, files, { sessionOptions: { logSeverityLevel: 3 } });
}

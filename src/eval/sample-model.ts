// Samples a model directory in Node with the same engine the browser worker runs (src/worker/engine.ts on
// onnxruntime-node): used to make preference pairs and to evaluate configurations (`npm run reproduce`).
import * as ort from 'onnxruntime-node';
import { isPrepared, ManifestError, type ModelManifest } from '../model/manifest.ts';
import { readModelDirectory as readAnyModelDirectory } from '../pipelines/read-directory.ts';
import { createModelEngine, type Engine } from '../pipelines/index.ts';
import { memorySource } from '../model/source/memory.ts';

export interface ModelDirectory {
  dir: string;
  manifest: ModelManifest;
  files: Map<string, Uint8Array>;
}

/** An embedded-model directory (the world's reward and training CLIs work on that model only). */
export function readModelDirectory(dir: string): ModelDirectory {
  const model = readAnyModelDirectory(dir);
  if (isPrepared(model.manifest)) throw new ManifestError(`${dir} holds a prepared ${model.manifest.kind} model; this command works on the embedded model only`);
  return model as ModelDirectory;
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
  return createModelEngine(ort, memorySource({ ...model.manifest, loras: entries }, files), { sessionOptions: { logSeverityLevel: 3 } });
}

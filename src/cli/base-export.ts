// Writes a trained base model into a model directory in build-standin's layout (unet.onnx + unet.onnx.data,
// text_encoder.onnx, manifest.json with sizes and sha256), keeping the η/δ LoRA files and entries already there.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TINY_TEXT_ENCODER } from '../embedded/text-encoder.ts';
import type { UnetConfig } from '../embedded/unet.ts';
import { externalizeWeights, writeModel } from '../onnx/model-io.ts';
import { parseManifest, type ModelManifest } from '../model/manifest.ts';
import { buildBaseModels } from './base-graph.ts';
import { BASE_SCHEDULER } from './base-data.ts';

/** What the manifest records about how the base model was trained (beyond ModelManifest's fields). */
export interface BaseTrainingRecord {
  command: string;
  steps: number;
  batchSize: number;
  learningRate: string;
  cfgDropout: number;
  ema: number;
  seed: number;
  parameters: number;
  finalLoss: number;
  seconds: number;
  machine: string;
  data: string;
}

export type TrainedManifest = ModelManifest & { training: { base: BaseTrainingRecord } & Record<string, unknown> };

export function writeBaseModel(outDir: string, weights: ReadonlyMap<string, Float32Array>, unetConfig: UnetConfig, record: BaseTrainingRecord): TrainedManifest {
  mkdirSync(outDir, { recursive: true });
  const previous = existsSync(join(outDir, 'manifest.json')) ? parseManifest(readFileSync(join(outDir, 'manifest.json'), 'utf8')) : undefined;
  const { unet, textEncoder, unetWeights, textEncoderWeights } = buildBaseModels(weights, unetConfig);
  const missing = [...unetWeights, ...textEncoderWeights].filter((n) => !weights.has(n));
  if (missing.length) throw new Error(`trained weights lack ${missing.length} parameters, e.g. ${missing.slice(0, 3).join(', ')}`);
  const { model: unetExternal, data } = externalizeWeights(unet, 'unet.onnx.data');
  const written: Record<string, Uint8Array> = {
    'unet.onnx': writeModel(unetExternal),
    'unet.onnx.data': data,
    'text_encoder.onnx': writeModel(textEncoder),
  };
  for (const [name, bytes] of Object.entries(written)) writeFileSync(join(outDir, name), bytes);
  const loras = previous?.loras ?? {};
  const loraFiles = Object.values(loras).map((l) => l.file).filter((f) => existsSync(join(outDir, f)));

  const old = previous as Partial<TrainedManifest> | undefined;
  const manifest: TrainedManifest = {
    name: 'embedded-world',
    description: 'The embedded default model: SD-shaped pixel-space UNet (32×32 RGB) and CLIP-shaped text encoder, '
      + 'trained from scratch in Node (onnxruntime-node, our gradient graphs) on the procedural shapes world (src/world).',
    status: 'trained',
    unet: { file: 'unet.onnx', config: unetConfig },
    textEncoder: { file: 'text_encoder.onnx', config: TINY_TEXT_ENCODER },
    scheduler: { ...BASE_SCHEDULER },
    defaults: previous?.defaults ?? { prompt: 'a small red circle above a large blue square', negativePrompt: '', steps: 20, omega: 4, alpha: 1, beta: 1, seed: 42, scheduler: 'ddim' },
    loras,
    training: { ...(old?.training ?? {}), base: record },
    files: [...Object.keys(written), ...loraFiles].map((path) => {
      const bytes = readFileSync(join(outDir, path));
      return { path, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
    }),
  };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

// The model manifest: what `models/manifest.json` (and any model directory the page or CLIs load) says about its files.
// It is the contract between the Node pipeline that writes a model and the worker that loads it.
import type { UnetConfig } from '../embedded/unet.ts';
import type { TextEncoderConfig } from '../embedded/text-encoder.ts';

export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface LoraEntryInfo {
  file: string;
  /** What it is for: the preference offset η (DPO) or the negative offset δ (NPO). */
  role: 'eta' | 'delta';
  rank: number;
  description: string;
}

export interface ModelManifest {
  name: string;
  description: string;
  /** 'standin': seeded random weights (the walking skeleton); 'trained': the embedded model trained end to end. */
  status: 'standin' | 'trained';
  unet: { file: string; config: UnetConfig };
  textEncoder: { file: string; config: TextEncoderConfig };
  /** diffusers scheduler_config.json keys, exactly as diffusers writes them. */
  scheduler: Record<string, unknown>;
  defaults: { prompt: string; negativePrompt: string; steps: number; omega: number; alpha: number; beta: number; seed: number; scheduler: string };
  loras: { eta?: LoraEntryInfo; delta?: LoraEntryInfo };
  files: ManifestFile[];
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

/** Checks the manifest's shape enough that a wrong file (an HTML page, another JSON) fails here with a clear message. */
export function parseManifest(text: string): ModelManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const start = text.trimStart().slice(0, 40);
    throw new ManifestError(`model manifest is not JSON (it starts with ${JSON.stringify(start)}); is the model directory served correctly?`);
  }
  const m = value as Partial<ModelManifest>;
  if (!m || typeof m !== 'object' || !m.unet?.file || !m.textEncoder?.file || !Array.isArray(m.files)) {
    throw new ManifestError('model manifest lacks unet.file, textEncoder.file or files[]');
  }
  return m as ModelManifest;
}

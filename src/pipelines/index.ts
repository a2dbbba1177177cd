// One entry point for every model family (DESIGN §5): the manifest names the family, this picks its pipeline — the
// embedded pixel model (embedded.ts), or a prepared SD1.5 (sd15.ts) or SDXL (sdxl.ts) directory — and hands it to the
// one engine (src/engine/engine.ts). Nothing else branches on the family.
import { createEngine, type Engine, type EngineOptions } from '../engine/engine.ts';
import type { ModelFamily } from '../engine/family.ts';
import { isPrepared } from '../model/manifest.ts';
import type { ModelSource } from '../model/source/source.ts';
import { embeddedFamily } from './embedded.ts';
import type { Ort } from './onnx-component.ts';
import { sd15Family } from './sd15.ts';
import { sdxlFamily } from './sdxl.ts';
import { promptTokenizer } from './tokenizer.ts';

export type { Engine, EngineOptions } from '../engine/engine.ts';

/** The engine for a model directory, read through its source (every file checked against the manifest as it is read). */
export async function createModelEngine(ort: Ort, source: ModelSource, options: EngineOptions = {}): Promise<Engine> {
  return createEngine(ort, await modelFamily(ort, source, options), source, options);
}

async function modelFamily(ort: Ort, source: ModelSource, options: EngineOptions): Promise<ModelFamily> {
  const { manifest } = source;
  if (!isPrepared(manifest)) return embeddedFamily(ort, source, options);
  if (manifest.kind === 'sdxl') return sdxlFamily(ort, source, options);
  if (manifest.kind !== 'sd15') throw new Error(`model kind ${manifest.kind} is not supported (sd15 and sdxl are)`);
  return sd15Family(ort, source, options);
}

export { promptTokenizer };

// One entry point for every model family (DESIGN §5): the manifest names the family and this picks the pipeline —
// the embedded pixel model (src/worker/engine.ts) or a prepared SD1.5 (sd15.ts) or SDXL (sdxl.ts) directory. Nothing
// else branches on the family.
import { tokenize, words } from '../embedded/tokenizer.ts';
import { isPrepared, type AnyManifest } from '../model/manifest.ts';
import { createEngine, type EngineOptions } from '../worker/engine.ts';
import type { Ort } from './onnx-component.ts';
import type { LatentEngine } from './latent-engine.ts';
import { createSd15Engine } from './sd15.ts';
import { createSdxlEngine } from './sdxl.ts';
import { promptTokenizer } from './tokenizer.ts';

export type { LatentEngine } from './latent-engine.ts';

export async function createModelEngine(ort: Ort, manifest: AnyManifest, files: ReadonlyMap<string, Uint8Array>, options: EngineOptions = {}): Promise<LatentEngine> {
  if (isPrepared(manifest)) {
    if (manifest.kind === 'sdxl') {
      return createSdxlEngine(ort, manifest, files, [promptTokenizer(manifest, files), promptTokenizer(manifest, files, manifest.sdxl!.tokenizer2.dir)], options);
    }
    if (manifest.kind !== 'sd15') throw new Error(`model kind ${manifest.kind} is not supported (sd15 and sdxl are)`);
    return createSd15Engine(ort, manifest, files, promptTokenizer(manifest, files), options);
  }
  const engine = await createEngine(ort, manifest, files, options);
  const length = manifest.textEncoder.config.contextLength;
  return {
    ...engine,
    get info() { return engine.info; },
    tokens: (prompt) => ({ ids: Array.from(tokenize(prompt, length), Number), count: words(prompt).length, limit: length - 2, truncated: false }),
    lastLatents: () => undefined, // pixel space: the images are the final samples
  };
}

export { promptTokenizer };

// The Stable Diffusion XL pipeline: diffusers' StableDiffusionXLPipeline's conditioning (sdxl-conditioning.ts:
// encode_prompt, _get_add_time_ids) over the shared latent engine (latent-engine.ts: NPO-CFG sampling, θ_pos/θ_neg
// weight sets, VAE).
import type { PreparedManifest } from '../model/manifest.ts';
import type { EngineOptions } from '../worker/engine.ts';
import { createLatentEngine, type LatentEngine } from './latent-engine.ts';
import type { Ort } from './onnx-component.ts';
import { sdxlConditioner } from './sdxl-conditioning.ts';
import type { PromptTokenizer } from './tokenizer.ts';

export { addTimeIds, concatHidden, sdxlConditioner, zeroedNegative, type SdxlPromptEmbeds } from './sdxl-conditioning.ts';

export async function createSdxlEngine(ort: Ort, manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>, tokenizers: [PromptTokenizer, PromptTokenizer], options: EngineOptions = {}): Promise<LatentEngine> {
  return createLatentEngine(ort, manifest, files, await sdxlConditioner(ort, manifest, files, tokenizers, options), options);
}

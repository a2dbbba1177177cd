// The Stable Diffusion XL family: diffusers' StableDiffusionXLPipeline's conditioning (sdxl-conditioning.ts:
// encode_prompt, _get_add_time_ids) over the shared latent parts (latent-family.ts: the UNet export, η/δ, latents,
// VAE), sampled by the one engine (src/engine/engine.ts).
import type { EngineOptions } from '../engine/engine.ts';
import type { ModelFamily } from '../engine/family.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { latentFamily } from './latent-family.ts';
import { readComponent } from './onnx-component.ts';
import type { Ort } from './onnx-component.ts';
import { sdxlConditioner } from './sdxl-conditioning.ts';
import { promptTokenizer, readTokenizer, type PromptTokenizer } from './tokenizer.ts';
import type { ModelSource } from '../model/source/source.ts';

export { addTimeIds, concatHidden, sdxlConditioner, zeroedNegative, type SdxlPromptEmbeds } from './sdxl-conditioning.ts';

export async function sdxlFamily(ort: Ort, source: ModelSource, options: EngineOptions = {}): Promise<ModelFamily> {
  const manifest = source.manifest as PreparedManifest;
  const x = manifest.sdxl;
  if (!x) throw new Error(`${manifest.name} is not a prepared SDXL model (no sdxl section)`);
  const files = new Map([
    ...(await readComponent(source, manifest.textEncoder)), ...(await readComponent(source, x.textEncoder2)),
    ...(await readTokenizer(source, manifest.tokenizer.dir)), ...(await readTokenizer(source, x.tokenizer2.dir)),
  ]);
  const tokenizers: [PromptTokenizer, PromptTokenizer] = [promptTokenizer(manifest, files), promptTokenizer(manifest, files, x.tokenizer2.dir)];
  return latentFamily(ort, source, await sdxlConditioner(ort, manifest, files, tokenizers, options), options);
}

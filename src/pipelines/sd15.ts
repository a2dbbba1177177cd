// The Stable Diffusion 1.5 family: diffusers' StableDiffusionPipeline's text conditioning over the shared latent parts
// (latent-family.ts: the UNet export, η/δ, latents, VAE), sampled by the one engine (src/engine/engine.ts):
//   CLIP tokenizer (77 ids, `tokenizer(p, padding="max_length", truncation=True)`) → text encoder → last_hidden_state
//   [77, dim], for the prompt and the negative prompt ("" is encoded, as diffusers does without a negative prompt).
import type { EngineOptions } from '../engine/engine.ts';
import type { Conditioner, ModelFamily } from '../engine/family.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { floatInput, floatOutput } from './float-tensors.ts';
import { latentFamily } from './latent-family.ts';
import { createComponentSession, readComponent, type Ort } from './onnx-component.ts';
import type { ModelSource } from '../model/source/source.ts';
import { promptTokenizer, readTokenizer } from './tokenizer.ts';
import { inputIdsTensor, promptCache, tokenReport } from './text-input.ts';
import type { PromptTokenizer } from './tokenizer.ts';

export async function sd15Family(ort: Ort, source: ModelSource, options: EngineOptions = {}): Promise<ModelFamily> {
  const manifest = source.manifest as PreparedManifest;
  const files = new Map([...(await readComponent(source, manifest.textEncoder)), ...(await readTokenizer(source, manifest.tokenizer.dir))]);
  return latentFamily(ort, source, await sd15Conditioner(ort, manifest, files, promptTokenizer(manifest, files), options), options);
}

export async function sd15Conditioner(ort: Ort, manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>, tokenizer: PromptTokenizer, options: EngineOptions = {}): Promise<Conditioner> {
  const textEncoder = await createComponentSession(ort, manifest.textEncoder, files, options.sessionOptions);
  const { length, dim } = manifest.context;
  const encode = promptCache(async (prompt) => {
    const out = await textEncoder.run({ input_ids: inputIdsTensor(ort, manifest.textEncoder, tokenizer.encode(prompt).ids) });
    return floatOutput(out[manifest.textEncoder.outputs[0] ?? 'last_hidden_state']).slice();
  });
  return {
    size: length * dim,
    encode: async (params) => ({ positive: await encode(params.prompt), negative: await encode(params.negativePrompt) }),
    unetFeeds: (packed, n) => ({ encoder_hidden_states: floatInput(ort, manifest.unet.inputs.encoder_hidden_states, packed, [n, length, dim]) }),
    tokens: (prompt) => tokenReport(tokenizer, prompt, manifest.tokenizer.modelMaxLength),
    release: () => textEncoder.release(),
  };
}

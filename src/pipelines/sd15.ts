// The Stable Diffusion 1.5 pipeline: diffusers' StableDiffusionPipeline's text conditioning over the shared latent
// engine (latent-engine.ts: NPO-CFG sampling with θ_pos/θ_neg weight sets, VAE):
//   CLIP tokenizer (77 ids, `tokenizer(p, padding="max_length", truncation=True)`) → text encoder → last_hidden_state
//   [77, dim], for the prompt and the negative prompt ("" is encoded, as diffusers does without a negative prompt).
import type { PreparedManifest } from '../model/manifest.ts';
import type { EngineOptions } from '../worker/engine.ts';
import { floatInput, floatOutput } from './float-tensors.ts';
import { createLatentEngine, type Conditioner, type LatentEngine } from './latent-engine.ts';
import { createComponentSession, type Ort } from './onnx-component.ts';
import { inputIdsTensor, promptCache, tokenReport } from './text-input.ts';
import type { PromptTokenizer } from './tokenizer.ts';

export async function createSd15Engine(ort: Ort, manifest: PreparedManifest, files: ReadonlyMap<string, Uint8Array>, tokenizer: PromptTokenizer, options: EngineOptions = {}): Promise<LatentEngine> {
  return createLatentEngine(ort, manifest, files, await sd15Conditioner(ort, manifest, files, tokenizer, options), options);
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

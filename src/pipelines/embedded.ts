// The embedded model as a family (DESIGN decision 3, family.ts): SD's UNet and CLIP text encoder in miniature,
// sampling pixels directly (no VAE: the sample is the image, so the sampler's previews show it). Its tokenizer is a
// fixed word vocabulary (src/embedded/tokenizer.ts); η and δ are LoRA files on the attention projections, the sites
// its trainer targets. The UNet takes a float32 timestep and the text encoder's last hidden state.
import { tokenize, words } from '../embedded/tokenizer.ts';
import type { EngineOptions } from '../engine/engine.ts';
import type { Conditioner, ModelFamily } from '../engine/family.ts';
import { readOffset } from '../engine/offsets.ts';
import { NEEDS_DISTILLED_MODEL, SCHEDULER_NAMES } from '../diffusion/schedulers/index.ts';
import type { ModelManifest } from '../model/manifest.ts';
import type { ModelSource } from '../model/source/source.ts';
import { offsetFiles } from '../engine/unet-files.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { readModel } from '../onnx/model-io.ts';
import type { Ort } from './onnx-component.ts';
import { promptCache } from './text-input.ts';

export async function embeddedFamily(ort: Ort, source: ModelSource, options: EngineOptions = {}): Promise<ModelFamily> {
  const manifest = source.manifest as ModelManifest;
  const model = readModel(await source.read(manifest.unet.file));
  const sites = findLoraSites(model);
  const targets = sites.map(({ modulePath, inFeatures, outFeatures }) => ({ modulePath, inFeatures, outFeatures }));
  const { config } = manifest.unet;
  return {
    info: {
      name: manifest.name,
      status: manifest.status,
      kind: 'embedded',
      width: config.sampleSize,
      height: config.sampleSize,
      contextLength: manifest.textEncoder.config.contextLength,
      // LCM needs a consistency-distilled model; offering it for this one would only produce mush.
      schedulers: SCHEDULER_NAMES.filter((name) => !NEEDS_DISTILLED_MODEL.has(name)),
      defaults: { ...manifest.defaults },
    },
    unet: {
      model,
      graphPath: manifest.unet.file,
      sites,
      sitesDescription: 'attention projections',
      sampleType: 'float32',
      timestepType: 'float32',
      output: 'out_sample',
    },
    offsets: { eta: await readOffset(manifest.loras.eta, offsetFiles(source, false), targets), delta: await readOffset(manifest.loras.delta, offsetFiles(source, false), targets) },
    scheduler: manifest.scheduler,
    sampleShape: () => [config.inChannels, config.sampleSize, config.sampleSize],
    conditioner: await embeddedConditioner(ort, manifest, await source.read(manifest.textEncoder.file), options),
    release: async () => undefined,
  };
}

async function embeddedConditioner(ort: Ort, manifest: ModelManifest, graph: Uint8Array, options: EngineOptions): Promise<Conditioner> {
  const textEncoder = await ort.InferenceSession.create(graph, options.sessionOptions);
  const tokens = manifest.textEncoder.config.contextLength;
  const { contextLength, crossAttentionDim } = manifest.unet.config;
  const encode = promptCache(async (prompt) => {
    const ids = tokenize(prompt, tokens);
    const out = await textEncoder.run({ input_ids: new ort.Tensor('int64', ids, [1, ids.length]) });
    return (out.last_hidden_state.data as Float32Array).slice();
  });
  return {
    size: contextLength * crossAttentionDim,
    encode: async (params) => ({ positive: await encode(params.prompt), negative: await encode(params.negativePrompt) }),
    unetFeeds: (packed, n) => ({ encoder_hidden_states: new ort.Tensor('float32', packed, [n, contextLength, crossAttentionDim]) }),
    tokens: (prompt) => ({ ids: Array.from(tokenize(prompt, tokens), Number), count: words(prompt).length, limit: tokens - 2, truncated: false }),
    release: () => textEncoder.release(),
  };
}

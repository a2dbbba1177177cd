// What the Stable Diffusion families share (DESIGN §5; family.ts), over a prepared model directory
// (src/model/manifest.ts PreparedManifest, written by `npm run prepare-model`): the UNet export with every Linear and
// 1×1 Conv as a LoRA site, the manifest's η and δ (LoRA, stack or dense), latents [4, H/8, W/8] at the requested size,
// and the VAE decoder on latents / scaling_factor (diffusers' pipelines' `vae.decode(latents / scaling_factor)`).
// The families differ only in their conditioning: sd15.ts (one CLIP encoder), sdxl.ts (two, plus added conditions).
import type { EngineOptions } from '../engine/engine.ts';
import type { Conditioner, ModelFamily } from '../engine/family.ts';
import { readOffset } from '../engine/offsets.ts';
import { NEEDS_DISTILLED_MODEL, SCHEDULER_NAMES } from '../diffusion/schedulers/index.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { readModel } from '../onnx/model-io.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import type { FloatType } from '../engine/offsets.ts';
import { createComponentSession, readComponent, type Ort } from './onnx-component.ts';
import type { ModelSource } from '../model/source/source.ts';
import { offsetFiles } from '../engine/unet-files.ts';

export async function latentFamily(ort: Ort, source: ModelSource, conditioner: Conditioner, options: EngineOptions = {}): Promise<ModelFamily> {
  const manifest = source.manifest as PreparedManifest;
  // On WebGPU the decoded image stays on the GPU until it is read back, once per image (engine.ts).
  const vae = await createComponentSession(ort, manifest.vaeDecoder, await readComponent(source, manifest.vaeDecoder), {
    ...options.sessionOptions,
    ...(options.gpu ? { preferredOutputLocation: { [manifest.vaeDecoder.outputs[0] ?? 'sample']: 'gpu-buffer' as const } } : {}),
  });
  const model = readModel(await source.read(manifest.unet.file));
  const sites = findLoraSites(model, 'all');
  const targets = sites.map(({ modulePath, inFeatures, outFeatures }) => ({ modulePath, inFeatures, outFeatures }));
  const d = manifest.defaults;
  const input = vae.inputNames[0] ?? 'latent_sample';
  return {
    info: {
      name: manifest.name,
      status: manifest.status,
      kind: manifest.kind,
      width: d.width,
      height: d.height,
      schedulers: SCHEDULER_NAMES.filter((name) => !NEEDS_DISTILLED_MODEL.has(name)),
      tokenLimit: manifest.tokenizer.modelMaxLength - 2,
      defaults: { prompt: d.prompt, negativePrompt: d.negativePrompt, seed: d.seed, steps: d.steps, omega: d.omega, alpha: d.alpha, beta: d.beta, scheduler: d.scheduler },
    },
    unet: {
      model,
      graphPath: manifest.unet.file,
      sites,
      sitesDescription: 'Linear/1×1-Conv layers',
      sampleType: floatType(manifest.unet.inputs.sample),
      timestepType: (manifest.unet.inputs.timestep ?? 'float32') as 'float32' | 'float16' | 'int64',
      output: manifest.unet.outputs[0] ?? 'out_sample',
    },
    // On WebGPU a dense η's tensors are streamed to the GPU when merged: only the files' headers are read here.
    offsets: { eta: await readOffset(manifest.offsets.eta, offsetFiles(source, !!options.gpu), targets), delta: await readOffset(manifest.offsets.delta, offsetFiles(source, !!options.gpu), targets) },
    scheduler: manifest.scheduler,
    sampleShape: (params) => latentShape(manifest, params),
    conditioner,
    decoder: { session: vae, input, inputType: floatType(manifest.vaeDecoder.inputs[input]), output: manifest.vaeDecoder.outputs[0] ?? 'sample', scalingFactor: manifest.latent.scalingFactor },
    async release() {
      await conditioner.release();
      await vae.release();
    },
  };
}

const floatType = (type: string | undefined): FloatType => (type === 'float16' ? 'float16' : 'float32');

/** [4, H/8, W/8] for the requested image size (the model's default size when none is given). */
export function latentShape(manifest: PreparedManifest, params: Pick<GenerateParams, 'width' | 'height'>): [number, number, number] {
  const { channels, vaeScaleFactor: f } = manifest.latent;
  const width = params.width ?? manifest.defaults.width;
  const height = params.height ?? manifest.defaults.height;
  if (!Number.isInteger(width / f) || !Number.isInteger(height / f) || width <= 0 || height <= 0) {
    throw new Error(`image size ${width}×${height} must be a positive multiple of ${f} (the VAE's scale factor)`);
  }
  return [channels, height / f, width / f];
}

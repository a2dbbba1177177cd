// The latent-diffusion engine shared by the Stable Diffusion families (DESIGN §5), over a prepared model directory
// (src/model/manifest.ts PreparedManifest, written by `npm run prepare-model`), as diffusers' pipelines' __call__:
//   1. the family's text conditioning (a Conditioner: sd15.ts, sdxl.ts) for the prompt and the negative prompt
//   2. latents [4, H/8, W/8] from the torch-compatible generator (diffusers' randn_tensor on CPU) × init_noise_sigma
//   3. the NPO-CFG loop (src/diffusion/sampler.ts): positive branch on θ_pos = θ + η, negative on θ_neg = θ + α·η + β·δ
//   4. VAE decoder on latents / scaling_factor → image in [−1, 1]
// It implements the same Engine interface as the embedded model's engine, so the worker and the CLIs drive both.
import type * as OrtCommon from 'onnxruntime-common';
import { sampleNpoCfg, type Denoiser } from '../diffusion/sampler.ts';
import { createScheduler, NEEDS_DISTILLED_MODEL, SCHEDULER_NAMES, type SchedulerName } from '../diffusion/schedulers/index.ts';
import { resolveSeed } from '../diffusion/noise/index.ts';
import { loraDeltaWeight, parseLora } from '../lora/formats.ts';
import { decodeTensorBytes, DTYPE_BYTES, parseSafetensorsHeader, readHeaderLength } from '../lora/safetensors.ts';
import type { LoraEntry, LoraSet } from '../lora/types.ts';
import type { LoraOffset, PreparedManifest, PreparedOffset } from '../model/manifest.ts';
import { findLoraSites, type LoraSite } from '../onnx/lora-sites.ts';
import { readModel, readStoredWeight, writeModel } from '../onnx/model-io.ts';
import type { ModelProto } from '../onnx/proto.ts';
import type { Engine, EngineOptions, GenerateHooks } from '../worker/engine.ts';
import type { GenerateParams, ImageKind, LoraRole, ModelInfo } from '../worker/protocol.ts';
import { negativeId, POSITIVE } from '../worker/weight-set-ids.ts';
import { floatInput, floatOutput } from './float-tensors.ts';
import { componentFiles, createComponentSession, type Ort } from './onnx-component.ts';
import { cpuResidency, createWeightFeeder, gpuResidency, unetGraphFor, type TouchedTensor, type WeightFeeder } from './unet-weights.ts';
import { oneAtATime } from '../util/one-at-a-time.ts';

export type Feeds = Record<string, OrtCommon.Tensor>;
type Files = ReadonlyMap<string, Uint8Array>;

/** The latents of the last generation, before the VAE (what `npm run generate` writes as *.latents.f32). */
export interface LatentEngine extends Engine {
  lastLatents(): { shape: [number, number, number]; latents: Map<ImageKind, Float32Array> } | undefined;
  /** The prompt's token ids as the text encoder receives them, and its count without BOS/EOS (the page's "12/75"). */
  tokens(prompt: string): TokenReport;
}

export interface TokenReport {
  ids: number[];
  count: number;
  limit: number;
  truncated: boolean;
  /** SDXL: the second tokenizer's ids (it pads with its own pad token). */
  ids2?: number[];
}

/**
 * A model family's text conditioning. Each branch's conditioning is packed into one Float32Array per sample (the
 * sampler copies it into the batch as it is), and unpacked into the UNet's inputs for a call of n samples.
 */
export interface Conditioner {
  /** Values per sample in the packed conditioning. */
  size: number;
  encode(params: GenerateParams): Promise<{ positive: Float32Array; negative: Float32Array }>;
  unetFeeds(packed: Float32Array, n: number): Feeds;
  tokens(prompt: string): TokenReport;
  release(): Promise<void>;
}

export async function createLatentEngine(ort: Ort, manifest: PreparedManifest, files: Files, conditioner: Conditioner, options: EngineOptions = {}): Promise<LatentEngine> {
  const file = fileReader(files);
  const sessionOptions = options.sessionOptions;
  // Sessions are created one after another: ORT's WebGPU EP fails when two are created at once (ENVIRONMENT.md).
  const vaeDecoder = await createComponentSession(ort, manifest.vaeDecoder, files, sessionOptions);

  const unetModel = readModel(file(manifest.unet.file));
  const externals = componentFiles(manifest.unet, files);
  const sites = findLoraSites(unetModel, 'all');
  const targets = sites.map(({ modulePath, inFeatures, outFeatures }) => ({ modulePath, inFeatures, outFeatures }));
  const modelOffsets = { eta: readOffset(manifest.offsets.eta, file, targets), delta: readOffset(manifest.offsets.delta, file, targets) };
  let offsets = { ...modelOffsets };
  let unet = buildUnet();
  await unet;

  async function buildUnet(): Promise<{ session: OrtCommon.InferenceSession; feeder: WeightFeeder & { release(): void } }> {
    const touched = touchedTensors(unetModel, sites, externals, offsets);
    const graph = unetGraphFor(unetModel, touched);
    const session = await ort.InferenceSession.create(writeModel(graph.model), { ...sessionOptions, externalData: [...externals].map(([path, data]) => ({ path, data })) });
    // On WebGPU the weight sets stay in GPU buffers on ORT's device (ENVIRONMENT.md: one device, zero-copy inputs).
    const residency = options.gpu ? gpuResidency(ort, options.gpu.device) : cpuResidency(ort);
    return { session, feeder: createWeightFeeder(ort, touched, graph.mode, residency) };
  }

  let unetCalls = 0;
  let last: ReturnType<LatentEngine['lastLatents']>;
  const info = modelInfo(manifest, sites.length, offsets);

  return {
    info,
    tokens: (prompt) => conditioner.tokens(prompt),
    useLora(role, lora) {
      const given = lora === undefined || lora === 'none' ? [] : lora instanceof Uint8Array ? [{ bytes: lora, scale: 1 }] : lora;
      const parts = given.map(({ bytes, scale }, i) => {
        const set = parseLora(bytes, targets, { unmatched: 'skip' });
        const which = given.length > 1 ? `LoRA ${i + 1}: ` : '';
        if (set.entries.size === 0) throw new Error(`${which}none of its ${set.skipped.length} keys matches the model's ${sites.length} Linear/1×1-Conv layers (e.g. ${sites[0]?.modulePath})`);
        if (!Number.isFinite(scale)) throw new Error(`${which}scale ${scale} is not a finite number`);
        return { set, scale };
      });
      offsets = { ...offsets, [role]: parts.length ? { kind: 'lora', parts } : lora === 'none' ? undefined : modelOffsets[role] };
      // The touched tensors decide the graph (stacked or grouped), so the UNet session is rebuilt; generate() awaits it.
      unet = unet.then(async (previous) => {
        await previous.session.release().catch(() => undefined);
        previous.feeder.release();
        return buildUnet();
      });
      Object.assign(info, modelInfo(manifest, sites.length, offsets));
      return { skipped: parts.reduce((n, p) => n + p.set.skipped.length, 0) };
    },
    generate: oneAtATime(async (params, images, hooks) => {
      const seed = resolveSeed(params.seed);
      const { session, feeder } = await unet;
      const shape = latentShape(manifest, params);
      const denoise = denoiserFor(ort, session, feeder, manifest, conditioner, shape, () => unetCalls++);
      const { positive: positiveContext, negative: negativeContext } = await conditioner.encode(params);
      const negative = negativeId(params.alpha, params.beta);
      unetCalls = 0;
      const latents = (await sampleNpoCfg({
        jobs: images.map((kind) => ({ key: kind, negativeWeights: kind === 'baseline' ? POSITIVE : negative })),
        positiveWeights: POSITIVE,
        denoise,
        createScheduler: () => createScheduler(params.scheduler as SchedulerName, manifest.scheduler),
        steps: params.steps,
        omega: params.omega,
        seed,
        shape,
        positiveContext,
        negativeContext,
        ...withoutPreviews(hooks),
      })) as Map<ImageKind, Float32Array>;
      last = { shape, latents };
      const decoded = new Map<ImageKind, Float32Array>();
      for (const [kind, latent] of latents) decoded.set(kind, await decode(ort, vaeDecoder, manifest, latent, shape));
      return { seed, images: decoded };
    }),
    lastLatents: () => last,
    async release() {
      await conditioner.release();
      await vaeDecoder.release();
      const { session, feeder } = await unet;
      await session.release();
      feeder.release();
    },
    stats: () => ({ loop: 'cpu', readBacks: 0, unetCalls, previews: 0 }),
  };
}

/** Latent previews would need the VAE per preview; the prepared pipeline shows progress only (for now). */
function withoutPreviews({ onPreview: _onPreview, wantPreview: _wantPreview, ...rest }: GenerateHooks): GenerateHooks {
  return rest;
}

function fileReader(files: Files) {
  return (path: string) => {
    const bytes = files.get(path);
    if (!bytes) throw new Error(`model file ${path} is listed in the manifest but was not loaded`);
    return bytes;
  };
}

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

/** η or δ as loaded: a dense offset, or one or more LoRAs each with its scale (the offset is Σ scaleᵢ·ΔWᵢ). */
type Offset = { kind: 'lora'; parts: { set: LoraSet; scale: number }[] } | { kind: 'dense'; tensors: Map<string, DenseTensor> } | undefined;
/** A dense offset's tensor: its length from the header, its values decoded from the file's bytes when merged. */
type DenseTensor = { length: number; values: () => Float32Array };

function readOffset(entry: PreparedOffset | undefined, file: (path: string) => Uint8Array, targets: Parameters<typeof parseLora>[1]): Offset {
  if (!entry) return undefined;
  const part = (lora: LoraOffset) => ({ set: parseLora(file(lora.file), targets), scale: lora.scale ?? 1 });
  if (entry.kind === 'lora') return { kind: 'lora', parts: [part(entry)] };
  if (entry.kind === 'stack') return { kind: 'lora', parts: entry.parts.map(part) };
  const tensors = new Map<string, DenseTensor>();
  for (const path of entry.files) {
    // Header only: each tensor is decoded to float32 when its weight is merged and dropped after (unet-weights.ts).
    const bytes = file(path);
    const dataStart = 8 + readHeaderLength(bytes, bytes.length);
    for (const e of parseSafetensorsHeader(bytes.subarray(8, dataStart), bytes.length - dataStart).entries) {
      const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
      tensors.set(e.name, { length: raw.length / DTYPE_BYTES[e.dtype], values: () => decodeTensorBytes(raw, e.dtype) });
    }
  }
  return { kind: 'dense', tensors };
}

/**
 * Every UNet tensor η or δ changes, with θ as the file stores it and the offsets as functions run per tensor while it
 * is merged: a dense offset decoded from its file, a LoRA's Σ scaleᵢ·ΔWᵢ (unet-weights.ts: nothing float32 stays).
 */
function touchedTensors(model: ModelProto, sites: readonly LoraSite[], externals: Files, offsets: { eta: Offset; delta: Offset }): TouchedTensor[] {
  const siteByWeight = new Map(sites.map((s) => [s.weightName, s]));
  const siteByModule = new Map(sites.map((s) => [s.modulePath, s]));
  const initializers = new Map((model.graph!.initializer ?? []).map((t) => [t.name ?? '', t]));
  const byName = new Map<string, TouchedTensor>();
  const tensor = (name: string, role: LoraRole) => {
    const initializer = initializers.get(name);
    if (!initializer) throw new Error(`${role === 'eta' ? 'η' : 'δ'} names tensor ${name}, which the UNet graph does not have`);
    let t = byName.get(name);
    if (!t) {
      const { dims, data, type } = readStoredWeight(initializer, externals);
      byName.set(name, (t = { name, dims, base: data, site: siteByWeight.get(name), type }));
    }
    return t;
  };
  const checked = (t: TouchedTensor, role: LoraRole, length: number) => {
    if (length !== t.base.length) throw new Error(`${role === 'eta' ? 'η' : 'δ'} for ${t.name} has ${length} values, the weight [${t.dims.join(', ')}] has ${t.base.length}`);
  };
  for (const role of ['eta', 'delta'] as const) {
    const offset = offsets[role];
    if (offset?.kind === 'dense') {
      for (const [name, { length, values }] of offset.tensors) {
        const t = tensor(name, role);
        checked(t, role, length);
        t[role] = values;
      }
    }
    if (offset?.kind === 'lora') {
      const parts = new Map<TouchedTensor, { entry: LoraEntry; site: LoraSite; scale: number }[]>();
      for (const { set, scale } of offset.parts) {
        for (const [modulePath, entry] of set.entries) {
          const site = siteByModule.get(modulePath)!;
          const t = tensor(site.weightName, role);
          parts.set(t, [...(parts.get(t) ?? []), { entry, site, scale }]);
        }
      }
      for (const [t, list] of parts) {
        for (const { entry } of list) checked(t, role, entry.inFeatures * entry.outFeatures);
        // A stack: Σ scaleᵢ·ΔWᵢ where LoRAs share a layer, made when the tensor is merged.
        t[role] = () => {
          const sum = loraDeltaWeight({ ...list[0].entry, scale: list[0].entry.scale * list[0].scale }, list[0].site.layout);
          for (const { entry, site, scale } of list.slice(1)) {
            const values = loraDeltaWeight({ ...entry, scale: entry.scale * scale }, site.layout);
            for (let i = 0; i < sum.length; i++) sum[i] += values[i];
          }
          return sum;
        };
      }
    }
  }
  return [...byName.values()];
}

/** One batched UNet step for the sampler: the calls the weight sets need, outputs put back in batch order. */
function denoiserFor(ort: Ort, session: OrtCommon.InferenceSession, feeder: WeightFeeder, manifest: PreparedManifest, conditioner: Conditioner, shape: [number, number, number], counted: () => void): Denoiser {
  const sampleSize = shape[0] * shape[1] * shape[2];
  const inputs = manifest.unet.inputs;
  const output = manifest.unet.outputs[0] ?? 'out_sample';
  return async ({ sample, timestep, context, batch, weights }) => {
    const result = new Float32Array(batch * sampleSize);
    for (const call of feeder.callsFor(weights)) {
      const n = call.samples.length;
      const pick = (source: Float32Array, size: number) => {
        const out = new Float32Array(n * size);
        call.samples.forEach((s, i) => out.set(source.subarray(s * size, (s + 1) * size), i * size));
        return out;
      };
      const whole = n === batch;
      const feeds: Feeds = {
        ...call.feeds,
        sample: floatInput(ort, inputs.sample, whole ? sample : pick(sample, sampleSize), [n, ...shape]),
        timestep: timestepTensor(ort, inputs.timestep ?? 'float32', whole ? timestep : pick(timestep, 1)),
        ...conditioner.unetFeeds(whole ? context : pick(context, conditioner.size), n),
      };
      counted();
      const out = floatOutput((await session.run(feeds))[output]);
      call.samples.forEach((s, i) => result.set(out.subarray(i * sampleSize, (i + 1) * sampleSize), s * sampleSize));
    }
    return result;
  };
}

/**
 * The timestep as the export takes it. diffusers' ONNX pipeline casts with numpy (`np.array([t], dtype)`): an int64
 * input truncates a fractional timestep (Euler's interpolated ones) toward zero, as we do here.
 */
function timestepTensor(ort: Ort, type: string, t: Float32Array): OrtCommon.Tensor {
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(t, (v) => BigInt(Math.trunc(v))), [t.length]);
  return floatInput(ort, type, t, [t.length]);
}

async function decode(ort: Ort, vae: OrtCommon.InferenceSession, manifest: PreparedManifest, latent: Float32Array, shape: [number, number, number]): Promise<Float32Array> {
  const scaled = latent.map((v) => v / manifest.latent.scalingFactor);
  const input = vae.inputNames[0] ?? 'latent_sample';
  const out = await vae.run({ [input]: floatInput(ort, manifest.vaeDecoder.inputs[input], scaled, [1, ...shape]) });
  return floatOutput(out[manifest.vaeDecoder.outputs[0] ?? 'sample']).slice();
}

function modelInfo(manifest: PreparedManifest, siteCount: number, offsets: { eta: Offset; delta: Offset }): ModelInfo {
  const d = manifest.defaults;
  return {
    name: manifest.name,
    status: manifest.status,
    kind: manifest.kind,
    width: d.width,
    height: d.height,
    loraSites: siteCount,
    hasEta: !!offsets.eta,
    hasDelta: !!offsets.delta,
    offsets: { eta: describeOffset(offsets.eta), delta: describeOffset(offsets.delta) },
    schedulers: SCHEDULER_NAMES.filter((name) => !NEEDS_DISTILLED_MODEL.has(name)),
    tokenLimit: manifest.tokenizer.modelMaxLength - 2,
    defaults: { prompt: d.prompt, negativePrompt: d.negativePrompt, seed: d.seed, steps: d.steps, omega: d.omega, alpha: d.alpha, beta: d.beta, scheduler: d.scheduler },
  };
}

/** "dense" or the LoRAs with their scales, for the page: "1× diffusers LoRA (136 layers) + 0.8× diffusers LoRA (40 layers)". */
function describeOffset(offset: Offset): string | undefined {
  if (!offset) return undefined;
  if (offset.kind === 'dense') return `dense (${offset.tensors.size} tensors)`;
  return offset.parts.map(({ set, scale }) => `${scale}× ${set.format} LoRA (${set.entries.size} layers)`).join(' + ');
}

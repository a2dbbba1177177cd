// The sampling engine the worker runs: text encoder + UNet sessions, the weight sets θ_pos = θ + η and
// θ_neg = θ + α·η + β·δ fed as graph inputs (DESIGN decision 1), stacked so that one UNet call per step serves both
// (src/onnx/passes/stack-weight-sets.ts), and the NPO-CFG sampler. It is written against ORT's
// common API, so the same code runs on onnxruntime-web in the worker and on onnxruntime-node in tests and CLIs.
import type * as OrtCommon from 'onnxruntime-common';
import { sampleNpoCfg, type Denoiser, type SampleOptions } from '../diffusion/sampler.ts';
import { createScheduler, NEEDS_DISTILLED_MODEL, SCHEDULER_NAMES, type SchedulerName } from '../diffusion/schedulers/index.ts';
import { resolveSeed } from '../diffusion/noise/index.ts';
import { tokenize } from '../embedded/tokenizer.ts';
import { loraDeltaWeight, parseLora } from '../lora/formats.ts';
import type { LoraEntry, LoraSet } from '../lora/types.ts';
import type { ModelManifest } from '../model/manifest.ts';
import { mergeWeight } from '../model/merge.ts';
import { findLoraSites, type LoraSite } from '../onnx/lora-sites.ts';
import { readModel, readWeight, writeModel } from '../onnx/model-io.ts';
import { initializersToInputs } from '../onnx/passes/initializers-to-inputs.ts';
import { stackWeightSets } from '../onnx/passes/stack-weight-sets.ts';
import { createGpuEngine } from './gpu-engine.ts';
import type { GpuSite, OffsetSource } from './gpu-weights.ts';
import type { GenerateParams, GenerationStats, ImageKind, LoraRole, ModelInfo } from './protocol.ts';
import { negativeId, parseNegativeId, planBatch, POSITIVE } from './weight-set-ids.ts';
import { oneAtATime } from '../util/one-at-a-time.ts';

type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;
type Feeds = Record<string, OrtCommon.Tensor>;

export interface EngineOptions {
  sessionOptions?: OrtCommon.InferenceSession.SessionOptions;
  /** WebGPU: the device ORT's EP runs on. Weights, merges and (where the scheduler allows) the loop stay on it. */
  gpu?: { device: GPUDevice };
}

/** One LoRA of a stack on one branch: its file's bytes and its scale (diffusers' set_adapters adapter weight). */
export interface LoraPart { bytes: Uint8Array; scale: number }

export type GenerateHooks = Pick<SampleOptions, 'onStep' | 'signal' | 'betweenSteps' | 'wantPreview' | 'onPreview'>;

interface SiteWeights { site: LoraSite; base: Float32Array; eta?: Float32Array; delta?: Float32Array; lora?: Partial<Record<LoraRole, LoraEntry>> }

export interface Engine {
  info: ModelInfo;
  generate(params: GenerateParams, images: ImageKind[], hooks: GenerateHooks): Promise<{ seed: number; images: Map<ImageKind, Float32Array> }>;
  /**
   * Replaces η or δ by a LoRA file's (safetensors bytes), or by several stacked with their own scales (Σ scaleᵢ·ΔWᵢ;
   * prepared models only); undefined restores the model's own; 'none' leaves the role empty (θ + 0).
   */
  useLora(role: LoraRole, lora: Uint8Array | readonly LoraPart[] | undefined | 'none'): { skipped: number };
  release(): Promise<void>;
  /** Counters of the last generation (loop kind, read-backs, live GPU buffers). */
  stats(): GenerationStats;
}

export async function createEngine(ort: Ort, manifest: ModelManifest, files: ReadonlyMap<string, Uint8Array>, options: EngineOptions = {}): Promise<Engine> {
  const file = (path: string) => {
    const bytes = files.get(path);
    if (!bytes) throw new Error(`model file ${path} is listed in the manifest but was not loaded`);
    return bytes;
  };
  const unetModel = readModel(file(manifest.unet.file));
  const sites = findLoraSites(unetModel);
  const { model: unetWithWeightInputs, promoted } = initializersToInputs(unetModel, sites.map((s) => s.weightName));
  const targets = sites.map((s) => ({ modulePath: s.modulePath, inFeatures: s.inFeatures, outFeatures: s.outFeatures }));
  const modelLoras: Record<LoraRole, LoraSet | undefined> = {
    eta: manifest.loras.eta ? parseLora(file(manifest.loras.eta.file), targets) : undefined,
    delta: manifest.loras.delta ? parseLora(file(manifest.loras.delta.file), targets) : undefined,
  };
  const weights: SiteWeights[] = sites.map((site, i) => ({ site, base: readWeight(promoted[i].tensor, files).data }));
  const dense = !options.gpu; // the GPU path keeps LoRA factors, not dense ΔW
  applyLora(weights, 'eta', modelLoras.eta, dense);
  applyLora(weights, 'delta', modelLoras.delta, dense);

  // Sessions are created one after another: ORT's WebGPU EP fails when two are created at once (ENVIRONMENT.md).
  const externalData = [...files.keys()].filter((p) => p.endsWith('.data')).map((path) => ({ path, data: file(path) }));
  const textEncoder = await ort.InferenceSession.create(file(manifest.textEncoder.file), options.sessionOptions);
  const unet = await ort.InferenceSession.create(writeModel(stackWeightSets(unetWithWeightInputs, sites)), {
    ...options.sessionOptions, externalData, ...(options.gpu ? { preferredOutputLocation: { out_sample: 'gpu-buffer' as const } } : {}),
  });

  const { config } = manifest.unet;
  const shape: [number, number, number] = [config.inChannels, config.sampleSize, config.sampleSize];
  const contextDims = [config.contextLength, config.crossAttentionDim];
  const gpu = options.gpu && createGpuEngine({ ort, device: options.gpu.device, unet, shape, contextDims, schedulerConfig: manifest.scheduler, sites: weights.map(gpuSite) });
  let weightSets = gpu ? undefined : createWeightSets(ort, weights);
  const prompts = new Map<string, Float32Array>();
  let unetCalls = 0; // of the last CPU-path generation
  let previews = 0; // of the last generation

  async function encode(prompt: string): Promise<Float32Array> {
    const cached = prompts.get(prompt);
    if (cached) return cached;
    const ids = tokenize(prompt, manifest.textEncoder.config.contextLength);
    const out = await textEncoder.run({ input_ids: new ort.Tensor('int64', ids, [1, ids.length]) });
    const hidden = (out.last_hidden_state.data as Float32Array).slice();
    prompts.set(prompt, hidden);
    return hidden;
  }

  const denoise: Denoiser = async ({ sample, timestep, context, batch, weights: ids }) => {
    const feeds: Feeds = {
      ...weightSets!.feeds(ids),
      sample: new ort.Tensor('float32', sample, [batch, ...shape]),
      timestep: new ort.Tensor('float32', timestep, [batch]),
      encoder_hidden_states: new ort.Tensor('float32', context, [batch, ...contextDims]),
    };
    unetCalls++;
    const out = await unet.run(feeds);
    return out.out_sample.data as Float32Array;
  };

  const info = modelInfo(manifest, sites.length, weights);
  /** Puts `set` (undefined: none) in `role`'s place, on the GPU or in the CPU weight sets. */
  const swapIn = (role: LoraRole, set: LoraSet | undefined, skipped: number) => {
    applyLora(weights, role, set, dense);
    if (gpu) gpu.replaceOffsets(role, weights.map((w) => factors(w.lora?.[role])));
    else weightSets = createWeightSets(ort, weights);
    Object.assign(info, modelInfo(manifest, sites.length, weights));
    return { skipped };
  };
  return {
    info,
    useLora(role, lora) {
      if (lora === 'none') return swapIn(role, undefined, 0);
      const bytes = lora === undefined || lora instanceof Uint8Array ? lora : singleLora(lora);
      // A LoRA a person brings may also train layers we do not patch (feed-forward, proj_in/out, resnets, the text
      // encoder): those keys are skipped and counted rather than refused, as long as some attention projection matches.
      const set = bytes ? parseLora(bytes, targets, { unmatched: 'skip' }) : modelLoras[role];
      if (bytes && set!.entries.size === 0) {
        throw new Error(`none of its ${set!.skipped.length} keys matches the model's ${sites.length} attention projections (e.g. ${sites[0]?.modulePath})`);
      }
      return swapIn(role, set, bytes ? set!.skipped.length : 0);
    },
    generate: oneAtATime(async (params, images, { onPreview, ...rest }) => {
      const seed = resolveSeed(params.seed);
      previews = 0;
      const hooks: GenerateHooks = { ...rest, onPreview: onPreview && ((step, shown) => { previews++; onPreview(step, shown); }) };
      const [positiveContext, negativeContext] = [await encode(params.prompt), await encode(params.negativePrompt)];
      const negative = negativeId(params.alpha, params.beta);
      const jobs = images.map((kind) => ({ key: kind, negativeWeights: kind === 'baseline' ? POSITIVE : negative }));
      if (gpu) {
        const latents = await gpu.sample({ jobs, positiveWeights: POSITIVE, scheduler: params.scheduler, steps: params.steps, omega: params.omega, seed, shape, positiveContext, negativeContext, ...hooks });
        return { seed, images: latents as Map<ImageKind, Float32Array> };
      }
      unetCalls = 0;
      const latents = await sampleNpoCfg({
        jobs,
        positiveWeights: POSITIVE,
        denoise,
        createScheduler: () => createScheduler(params.scheduler as SchedulerName, manifest.scheduler),
        steps: params.steps,
        omega: params.omega,
        seed,
        shape,
        positiveContext,
        negativeContext,
        ...hooks,
      });
      return { seed, images: latents as Map<ImageKind, Float32Array> };
    }),
    async release() {
      gpu?.destroy();
      await textEncoder.release();
      await unet.release();
    },
    stats: () => ({ ...(gpu ? gpu.stats() : { loop: 'cpu', readBacks: 0, unetCalls }), previews }),
  };
}

/** Sets each site's dense delta for η or δ from a LoRA set (undefined: no such offset, a zero delta). */
function applyLora(weights: SiteWeights[], role: LoraRole, set: LoraSet | undefined, dense = true) {
  for (const w of weights) {
    const entry = set?.entries.get(w.site.modulePath);
    w[role] = entry && dense ? loraDeltaWeight(entry, w.site.layout) : undefined;
    w.lora = { ...w.lora, [role]: entry };
  }
}

const factors = (e?: LoraEntry): OffsetSource | undefined => (e ? { kind: 'lora', down: e.down, up: e.up, rank: e.rank, scale: e.scale } : undefined);

function gpuSite(w: SiteWeights): GpuSite {
  const { weightName, dims, inFeatures, outFeatures, layout } = w.site;
  return { weightName, dims, inFeatures, outFeatures, layout, base: w.base, eta: factors(w.lora?.eta), delta: factors(w.lora?.delta) };
}

/**
 * The stacked LoRA-site inputs [θ_pos; θ_neg], one array per site. θ_pos is merged once; the θ_neg half is re-merged in
 * place when a batch asks for another (α, β), so moving ω or the prompt re-merges nothing.
 */
function createWeightSets(ort: Ort, weights: SiteWeights[]) {
  const stacked = weights.map((w) => new Float32Array(2 * w.base.length));
  const mergeInto = (set: 0 | 1, alpha: number, beta: number) =>
    weights.forEach((w, i) => mergeWeight(w.base, [
      ...(w.eta ? [{ delta: w.eta, coefficient: alpha }] : []),
      ...(w.delta ? [{ delta: w.delta, coefficient: beta }] : []),
    ], stacked[i].subarray(set * w.base.length, (set + 1) * w.base.length)));
  mergeInto(0, 1, 0);
  const weightFeeds: Feeds = Object.fromEntries(weights.map(({ site }, i) => [site.weightName, new ort.Tensor('float32', stacked[i], [2, ...site.dims])]));
  let negative: string | undefined;
  return {
    /** Feeds for a batch whose samples use `ids` (θ_pos and at most one θ_neg). */
    feeds(ids: string[]): Feeds {
      const plan = planBatch(ids);
      if (plan.negative && plan.negative !== negative) {
        const { alpha, beta } = parseNegativeId(plan.negative);
        negative = undefined; // a failed merge must not leave a stale id
        mergeInto(1, alpha, beta);
        negative = plan.negative;
      }
      return { ...weightFeeds, [plan.input]: new ort.Tensor('int64', plan.sets, [ids.length]) };
    },
  };
}

function modelInfo(manifest: ModelManifest, siteCount: number, weights: SiteWeights[]): ModelInfo {
  const d = manifest.defaults;
  return {
    name: manifest.name,
    status: manifest.status,
    kind: 'embedded',
    width: manifest.unet.config.sampleSize,
    height: manifest.unet.config.sampleSize,
    loraSites: siteCount,
    hasEta: weights.some((w) => w.lora?.eta),
    hasDelta: weights.some((w) => w.lora?.delta),
    // LCM needs a consistency-distilled model; offering it for this one would only produce mush.
    schedulers: SCHEDULER_NAMES.filter((name) => !NEEDS_DISTILLED_MODEL.has(name)),
    defaults: { ...d },
  };
}

/** The embedded engine's offsets are one LoRA each at scale 1 (its GPU merge keeps the factors): no stacks. */
function singleLora(parts: readonly LoraPart[]): Uint8Array | undefined {
  if (parts.length === 0) return undefined;
  if (parts.length > 1 || parts[0].scale !== 1) throw new Error('the embedded model takes one LoRA per role at scale 1; stacking LoRAs with scales needs a prepared SD1.5/SDXL model');
  return parts[0].bytes;
}

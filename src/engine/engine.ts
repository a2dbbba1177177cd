// The one sampling engine (DESIGN §5 and decision 7), for every model family (family.ts): it owns the UNet session,
// the weight sets θ_pos = θ + η and θ_neg = θ + α·η + β·δ fed as graph inputs (paper Eq. 10; unet-graph.ts), the
// NPO-CFG sampling loop, cancel, stats and LoRA swaps, as diffusers' pipelines' __call__:
//   1. the family's text conditioning for the prompt and the negative prompt
//   2. the initial noise from the torch-compatible seeded generator × init_noise_sigma
//   3. the NPO-CFG loop: the positive branch on θ_pos, the negative on θ_neg (the baseline image: on θ_pos)
//   4. the family's decode (latent families: the VAE on latents / scaling_factor; the embedded model: none)
// Two residencies of the same algorithm: on WebGPU the weights live in GPU buffers merged by our WGSL kernels
// (weights-gpu.ts) and the loop runs on the GPU (sampler-gpu.ts), reading back one image each; without a device (the
// WASM backend, onnxruntime-node in the CLIs) the weights are merged on the CPU (weights-cpu.ts) and the loop is
// src/diffusion/sampler.ts. A scheduler without a linear plan runs the CPU loop on the GPU's weights.
import type * as OrtCommon from 'onnxruntime-common';
import { resolveSeed } from '../diffusion/noise/index.ts';
import { sampleNpoCfg, type Denoiser, type SampleJob, type SampleOptions } from '../diffusion/sampler.ts';
import { createScheduler, type SchedulerName } from '../diffusion/schedulers/index.ts';
import { linearPlan, type LinearPlan } from '../diffusion/schedulers/linear-step.ts';
import { readBuffer } from '../gpu/buffers.ts';
import { createCastKernels } from '../gpu/cast.ts';
import type { ElementType } from '../gpu/element-type.ts';
import { createParamSlots } from '../gpu/param-slots.ts';
import { createSamplerKernels } from '../gpu/sampler-kernels.ts';
import { createBufferTracker } from '../gpu/tracker.ts';
import { parseLora } from '../lora/formats.ts';
import { writeModel } from '../onnx/model-io.ts';
import { floatInput, floatOutput } from '../pipelines/float-tensors.ts';
import { oneAtATime } from '../util/one-at-a-time.ts';
import type { GenerateParams, GenerationStats, ImageKind, LoraRole, ModelInfo } from '../worker/protocol.ts';
import { negativeId, POSITIVE } from '../worker/weight-set-ids.ts';
import type { Feeds, ModelFamily, TokenReport } from './family.ts';
import type { ModelSource } from '../model/source/source.ts';
import { describeOffset, roleName, touchedTensors, type FloatType, type Offset, type TouchedTensor } from './offsets.ts';
import { cpuGraph, streamUnetToGpu, type LoadProgress } from './unet-files.ts';
import { sampleNpoCfgGpu, type GpuSlot, type GpuUnet } from './sampler-gpu.ts';
import { MAX_CALL_BATCH, unetAttentionAt, type UnetAttention, type WeightMode } from './unet-graph.ts';
import { activationFitProblem, type ActivationLimits } from '../model/fit.ts';
import { createCpuWeights, type UnetWeights } from './weights-cpu.ts';
import { createGpuWeights, type GpuWeights } from './weights-gpu.ts';

type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;

export interface EngineOptions {
  sessionOptions?: OrtCommon.InferenceSession.SessionOptions;
  /** WebGPU: the device ORT's EP runs on. Weights, merges, the loop and the decode stay on it. */
  gpu?: { device: GPUDevice };
  /** Bytes of the model read or streamed so far (the page's loading bar). */
  onProgress?: LoadProgress;
  /**
   * What the UNet's activations may take on this backend (src/model/fit.ts activationFitProblem): a size whose
   * activations do not fit is refused with the numbers before its first step. Absent: not checked (the CLIs).
   */
  activationLimits?: ActivationLimits;
}

/** One LoRA of a stack on one branch: its file's bytes and its scale (diffusers' set_adapters adapter weight). */
export interface LoraPart { bytes: Uint8Array; scale: number }

export type GenerateHooks = Pick<SampleOptions, 'onStep' | 'signal' | 'betweenSteps' | 'wantPreview' | 'onPreview'>;

export interface Engine {
  info: ModelInfo;
  generate(params: GenerateParams, images: ImageKind[], hooks: GenerateHooks): Promise<{ seed: number; images: Map<ImageKind, Float32Array> }>;
  /**
   * Replaces η or δ by a LoRA file's (safetensors bytes), or by several stacked with their own scales (Σ scaleᵢ·ΔWᵢ);
   * undefined restores the model's own; 'none' leaves the role empty (θ + 0).
   */
  useLora(role: LoraRole, lora: Uint8Array | readonly LoraPart[] | undefined | 'none'): { skipped: number };
  release(): Promise<void>;
  /** Counters of the last generation (loop kind, read-backs, UNet calls, live GPU buffers, merges). */
  stats(): GenerationStats;
  /** The samples of the last generation before the decode (what `npm run generate` writes as *.latents.f32); CPU loop only. */
  lastLatents(): { shape: [number, number, number]; latents: Map<ImageKind, Float32Array> } | undefined;
  tokens(prompt: string): TokenReport;
}

/**
 * A UNet session and its weight sets; `frozen`: the untouched weights' feeds on WebGPU (the engine's GPU buffers);
 * `attention`: the attention plan its graph was made for (one latent size, or every size that needs no chunking).
 */
interface Unet { session: OrtCommon.InferenceSession; weights: UnetWeights; touched: TouchedTensor[]; mode: WeightMode; frozen: Feeds; attention: UnetAttention }

export async function createEngine(ort: Ort, family: ModelFamily, source: ModelSource, options: EngineOptions = {}): Promise<Engine> {
  const device = options.gpu?.device;
  const tracker = device && createBufferTracker(device);
  const kernels = device && createSamplerKernels(device);
  const cast = device && createCastKernels(device);
  const { model, sites, output, graphPath } = family.unet;
  const targets = sites.map(({ modulePath, inFeatures, outFeatures }) => ({ modulePath, inFeatures, outFeatures }));
  let offsets = { ...family.offsets };
  // A weight's road (unet-files.ts): on WebGPU every external weight streamed into a GPU buffer of our own (but the
  // largest untouched Conv weights, kept as ORT initializers); on the CPU the files whole, handed to ORT as its
  // external data when a session is made and let go after: the engine keeps θ of the touched tensors only (copied,
  // where they are at most KEEP_FILES_SHARE of the files), so the worker does not hold a second copy of what ORT
  // holds. A rebuild (other tensors touched) reads them again.
  const touchedFor = (o: typeof offsets) => touchedTensors(model, sites, o);
  const gpuFiles = device ? await streamUnetToGpu(device, tracker!, source, model, graphPath, touchedFor(offsets), { onProgress: options.onProgress }) : undefined;

  // Attention is chunked per latent size where its scores would be large (unet-graph.ts unetAttentionAt); plans are
  // kept per size, since planning infers the shapes of the whole graph.
  const attentionPlans = new Map<string, UnetAttention>();
  const attentionAt = (shape: [number, number, number]) => {
    const key = shape.join('×');
    if (!attentionPlans.has(key)) attentionPlans.set(key, unetAttentionAt(model, unetInputDims(family, shape, MAX_CALL_BATCH)));
    return attentionPlans.get(key)!;
  };

  async function unetGraph(touchedNow: TouchedTensor[], attention: UnetAttention) {
    return gpuFiles ? { ...(await gpuFiles.graph(touchedNow, attention)), touched: touchedNow } : await cpuGraph(source, model, graphPath, touchedNow, attention, options.onProgress);
  }
  function createSession(graph: Awaited<ReturnType<typeof unetGraph>>) {
    // Sessions are created one after another: ORT's WebGPU EP fails when two are created at once (ENVIRONMENT.md).
    return ort.InferenceSession.create(writeModel(graph.model), {
      ...options.sessionOptions,
      ...(graph.externalData.length ? { externalData: graph.externalData } : {}),
      ...(device ? { preferredOutputLocation: { [output]: 'gpu-buffer' as const } } : {}),
    });
  }
  async function createUnet(touchedNow: TouchedTensor[], attention: UnetAttention): Promise<Unet> {
    const graph = await unetGraph(touchedNow, attention);
    const { touched, mode } = graph;
    const session = await createSession(graph);
    if (!gpuFiles) return { session, weights: createCpuWeights(ort, touched, mode), touched, mode, frozen: {}, attention };
    const weights = await createGpuWeights(ort, device!, tracker!, touched, mode, gpuFiles);
    return { session, weights, touched, mode, frozen: await gpuFiles.frozenFeeds(ort, touched), attention };
  }
  /** The UNet for another attention plan: a new session on the same weights (its inputs keep their names). */
  async function withAttention(previous: Unet, attention: UnetAttention): Promise<Unet> {
    if (previous.attention.key === attention.key) return previous;
    await previous.session.release();
    const session = await createSession(await unetGraph(previous.touched, attention));
    return { ...previous, session, attention };
  }
  let unet = createUnet(touchedFor(offsets), attentionAt(family.sampleShape(family.info)));
  /** The UNet of the last generation (stats read its merges). */
  let resolved: Unet | undefined = await unet;

  const plans = new Map<string, LinearPlan | undefined>();
  const planFor = (scheduler: string, steps: number) => {
    const key = `${scheduler}:${steps}`;
    if (!plans.has(key)) plans.set(key, linearPlan(() => createScheduler(scheduler, family.scheduler), steps));
    return plans.get(key);
  };

  let last: Omit<GenerationStats, 'liveBuffers' | 'liveBufferBytes' | 'merge'> = { loop: device ? 'gpu' : 'cpu', readBacks: 0, unetCalls: 0, previews: 0 };
  let lastLatents: ReturnType<Engine['lastLatents']>;
  const info: ModelInfo = { ...family.info, ...offsetInfo(offsets) };

  /** Swaps the offsets: the same touched tensors keep the session (the GPU re-merges in place), others rebuild it. */
  function swap(role: LoraRole, next: Offset) {
    offsets = { ...offsets, [role]: next };
    const current = offsets;
    unet = unet.then(async (previous) => {
      let touched = touchedFor(current);
      const same = touched.length === previous.touched.length && touched.every((t, i) => t.name === previous.touched[i].name);
      if (same && previous.mode !== 'none') {
        if (device) await (previous.weights as GpuWeights).replace(role, touched);
        else {
          // θ of the same tensors, as the session was made with (the files are not held).
          touched = touched.map((t, i) => ({ ...t, base: previous.touched[i].base }));
          previous.weights = createCpuWeights(ort, touched, previous.mode);
        }
        return { ...previous, touched };
      }
      await previous.session.release().catch(() => undefined);
      previous.weights.release();
      return createUnet(touched, previous.attention);
    });
    Object.assign(info, offsetInfo(offsets));
  }

  function offsetInfo(o: typeof offsets) {
    return { loraSites: sites.length, hasEta: !!o.eta, hasDelta: !!o.delta, offsets: { eta: describeOffset(o.eta), delta: describeOffset(o.delta) } };
  }

  return {
    info,
    tokens: (prompt) => family.conditioner.tokens(prompt),
    useLora(role, lora) {
      if (lora === 'none') return swap(role, undefined), { skipped: 0 };
      if (lora === undefined) return swap(role, family.offsets[role]), { skipped: 0 };
      const given = lora instanceof Uint8Array ? [{ bytes: lora, scale: 1 }] : lora;
      // A LoRA a person brings may also train layers we do not patch (feed-forward, resnets, the text encoder): those
      // keys are skipped and counted rather than refused, as long as some layer matches.
      const parts = given.map(({ bytes, scale }, i) => {
        const set = parseLora(bytes, targets, { unmatched: 'skip' });
        const which = given.length > 1 ? `LoRA ${i + 1}: ` : '';
        if (set.entries.size === 0) throw new Error(`${which}none of its ${set.skipped.length} keys matches the model's ${sites.length} ${family.unet.sitesDescription} (e.g. ${sites[0]?.modulePath})`);
        if (!Number.isFinite(scale)) throw new Error(`${which}scale ${scale} is not a finite number`);
        return { set, scale };
      });
      swap(role, parts.length ? { kind: 'lora', parts } : undefined);
      return { skipped: parts.reduce((n, p) => n + p.set.skipped.length, 0) };
    },
    generate: oneAtATime(async (params, images, hooks) => {
      const seed = resolveSeed(params.seed);
      const shape = family.sampleShape(params);
      const attention = attentionAt(shape);
      const problem = options.activationLimits && activationFitProblem(attention.activations, options.activationLimits, `${params.width ?? family.info.width}×${params.height ?? family.info.height}`);
      if (problem) throw new Error(problem);
      unet = unet.then((previous) => withAttention(previous, attention));
      const current = (resolved = await unet);
      const { positive: positiveContext, negative: negativeContext } = await family.conditioner.encode(params);
      const negative = negativeId(params.alpha, params.beta);
      const jobs: SampleJob[] = images.map((kind) => ({ key: kind, negativeWeights: kind === 'baseline' ? POSITIVE : negative }));
      // Latent previews would need the VAE per preview: only pixel-space families show the sampler's previews.
      const { wantPreview, onPreview, ...rest } = hooks;
      let previews = 0;
      const shown = family.decoder ? {} : { wantPreview, onPreview: onPreview && ((step: number, p: Parameters<NonNullable<typeof onPreview>>[1]) => (previews++, onPreview(step, p))) };
      const run = { seed, jobs, shape, positiveContext, negativeContext, omega: params.omega, ...rest, ...shown };
      const plan = device && planFor(params.scheduler, params.steps);
      const result = device && plan
        ? await generateOnGpu(current, plan, run)
        : await generateWithCpuLoop(current, params, run);
      last = { ...result.stats, previews };
      lastLatents = result.latents && { shape, latents: result.latents as Map<ImageKind, Float32Array> };
      return { seed, images: result.images as Map<ImageKind, Float32Array> };
    }),
    stats() {
      const buffers = tracker?.stats();
      const merge = resolved?.weights.stats();
      return { ...last, ...(buffers ? { liveBuffers: buffers.live, liveBufferBytes: buffers.bytes } : {}), ...(merge ? { merge } : {}) };
    },
    lastLatents: () => lastLatents,
    async release() {
      const { session, weights } = await unet;
      await session.release();
      weights.release();
      await family.release();
      tracker?.destroyAll();
    },
  };

  type Run = Omit<SampleOptions, 'denoise' | 'createScheduler' | 'steps' | 'positiveWeights'>;
  interface Generated { images: Map<string, Float32Array>; latents?: Map<string, Float32Array>; stats: Omit<GenerationStats, 'previews'> }

  /** The CPU loop (src/diffusion/sampler.ts), on CPU weights or on the GPU's (each UNet output read back). */
  async function generateWithCpuLoop(current: Unet, params: GenerateParams, run: Run): Promise<Generated> {
    let unetCalls = 0;
    let readBacks = 0;
    const sampleSize = run.shape[0] * run.shape[1] * run.shape[2];
    const denoise: Denoiser = async ({ sample, timestep, context, batch, weights: ids }) => {
      const result = new Float32Array(batch * sampleSize);
      for (const call of await current.weights.callsFor(ids, run.signal)) {
        const n = call.samples.length;
        const pick = (source: Float32Array, size: number) => (n === batch ? source : gather(source, call.samples, size));
        const feeds: Feeds = {
          ...current.frozen,
          ...call.feeds,
          sample: floatInput(ort, family.unet.sampleType, pick(sample, sampleSize), [n, ...run.shape]),
          timestep: timestepTensor(ort, family.unet.timestepType, pick(timestep, 1)),
          ...family.conditioner.unetFeeds(pick(context, family.conditioner.size), n),
        };
        unetCalls++;
        const tensor = (await current.session.run(feeds))[output];
        if (tensor.location === 'gpu-buffer') readBacks++;
        const out = await valuesOf(tensor);
        call.samples.forEach((s, i) => result.set(out.subarray(i * sampleSize, (i + 1) * sampleSize), s * sampleSize));
      }
      return result;
    };
    const latents = await sampleNpoCfg({
      ...run, positiveWeights: POSITIVE, denoise, steps: params.steps,
      createScheduler: () => createScheduler(params.scheduler as SchedulerName, family.scheduler),
    });
    const images = new Map<string, Float32Array>();
    for (const [key, latent] of latents) {
      const decoded = family.decoder ? await decodeOnCpu(latent, run.shape) : latent;
      if (family.decoder && device) readBacks++;
      images.set(key, decoded);
    }
    return { images, latents, stats: { loop: 'cpu', readBacks, unetCalls } };
  }

  async function decodeOnCpu(latent: Float32Array, shape: [number, number, number]): Promise<Float32Array> {
    const d = family.decoder!;
    const scaled = latent.map((v) => v / d.scalingFactor);
    const out = await d.session.run({ [d.input]: floatInput(ort, d.inputType, scaled, [1, ...shape]) });
    return (await valuesOf(out[d.output])).slice();
  }

  /**
   * The GPU loop: inputs, conditioning and outputs stay in GPU buffers, in the UNet's element type (float16 ones are
   * cast from and to our float32 latents on the GPU); the decode too; one read-back per image.
   */
  async function generateOnGpu(current: Unet, plan: LinearPlan, run: Run): Promise<Generated> {
    const owner = 'generation';
    const create = (bytes: number, label: string, data?: ArrayBufferView) => tracker!.create(owner, bytes, { label, data });
    const elementType = (t: FloatType): ElementType => (t === 'float16' ? 'f16' : 'f32');
    const io = elementType(family.unet.sampleType);
    const elementBytes = io === 'f16' ? 2 : 4;
    let unetCalls = 0;
    try {
      const sampleSize = run.shape[0] * run.shape[1] * run.shape[2];
      const requests = run.jobs.flatMap((job) => [POSITIVE, job.negativeWeights]);
      const contexts = requests.map((_, i) => (i % 2 === 0 ? run.positiveContext : run.negativeContext));
      const calls = await current.weights.callsFor(requests, run.signal);
      // Per call: its input (and, for a float16 UNet, a float32 copy of its output) and its conditioning, uploaded once
      // for the whole generation.
      const layout = calls.map((call) => {
        const n = call.samples.length;
        const input = create(n * sampleSize * elementBytes, 'unet input');
        const output32 = io === 'f16' ? create(n * sampleSize * 4, 'unet output f32') : undefined;
        const packed = new Float32Array(n * family.conditioner.size);
        call.samples.forEach((s, i) => packed.set(contexts[s], i * family.conditioner.size));
        const conditioning = Object.fromEntries(Object.entries(family.conditioner.unetFeeds(packed, n)).map(([name, t]) => {
          const data = t.data as ArrayBufferView;
          return [name, ort.Tensor.fromGpuBuffer(create(data.byteLength, name, data), { dataType: t.type as 'float32', dims: t.dims })];
        }));
        const sample = ort.Tensor.fromGpuBuffer(input, { dataType: family.unet.sampleType, dims: [n, ...run.shape] });
        return { call, n, input, output32, feeds: { ...current.frozen, ...call.feeds, ...conditioning, sample } };
      });
      const castParams = createParamSlots(device!, layout.length + 1, (bytes, usage) => tracker!.create(owner, bytes, { label: 'cast params', usage }));
      const slotOf: GpuSlot[] = [];
      layout.forEach(({ call, input }) => call.samples.forEach((s, i) => (slotOf[s] = { buffer: input, offset: i * sampleSize })));
      const gpuUnet: GpuUnet = {
        inputs: slotOf,
        inputType: io,
        async run(timestep) {
          const outputs: GpuSlot[] = [];
          const tensors: OrtCommon.Tensor[] = [];
          for (const [c, { call, n, feeds, output32 }] of layout.entries()) {
            unetCalls++;
            const tensor = (await current.session.run({ ...feeds, timestep: timestepTensor(ort, family.unet.timestepType, new Float32Array(n).fill(timestep)) }))[output];
            tensors.push(tensor);
            const buffer = tensor.gpuBuffer as GPUBuffer;
            if (output32) castOnGpu(castParams, c, { src: buffer, srcOffset: 0, dst: output32, dstOffset: 0, count: n * sampleSize, from: 'f16', to: 'f32' });
            call.samples.forEach((s, i) => (outputs[s] = { buffer: output32 ?? buffer, offset: i * sampleSize }));
          }
          return { outputs, release: () => tensors.forEach((t) => t.dispose()) };
        },
      };
      const { images, readBacks } = await sampleNpoCfgGpu({
        ...run, positiveWeights: POSITIVE, device: device!, kernels: kernels!, cast: cast!, tracker: tracker!, plan, unet: gpuUnet,
        finish: async (_, x) => {
          const d = family.decoder;
          if (!d) return new Float32Array(await readBuffer(device!, x.buffer, sampleSize * 4, x.offset * 4));
          // The VAE on GPU buffers: latents / scaling_factor written into its input, its image read back once.
          const inputType = elementType(d.inputType);
          const input = create(sampleSize * (inputType === 'f16' ? 2 : 4), 'vae input');
          castOnGpu(castParams, layout.length, { src: x.buffer, srcOffset: x.offset, dst: input, dstOffset: 0, count: sampleSize, from: 'f32', to: inputType, scale: 1 / d.scalingFactor });
          const out = await d.session.run({ [d.input]: ort.Tensor.fromGpuBuffer(input, { dataType: d.inputType, dims: [1, ...run.shape] }) });
          tracker!.destroy(input);
          return (await valuesOf(out[d.output])).slice();
        },
      });
      return { images, stats: { loop: 'gpu', readBacks, unetCalls } };
    } finally {
      tracker!.destroyOwner(owner);
    }
  }

  /** One cast dispatch, submitted at once (queue order puts it after the work that wrote `src`). */
  function castOnGpu(params: ReturnType<typeof createParamSlots>, slot: number, dispatch: Parameters<NonNullable<typeof cast>['encodeCast']>[3]) {
    const encoder = device!.createCommandEncoder({ label: 'cast' });
    const pass = encoder.beginComputePass();
    cast!.encodeCast(pass, params, slot, dispatch);
    pass.end();
    device!.queue.submit([encoder.finish()]);
  }
}

/** The UNet's inputs' dims for a call of n samples of this shape (what the engine feeds; weights aside). */
function unetInputDims(family: ModelFamily, shape: [number, number, number], n: number): Record<string, number[]> {
  const conditioning = family.conditioner.unetFeeds(new Float32Array(n * family.conditioner.size), n);
  return { sample: [n, ...shape], timestep: [n], ...Object.fromEntries(Object.entries(conditioning).map(([name, t]) => [name, [...t.dims]])) };
}

/** Rows `samples` of a batch of `size`-value samples. */
function gather(source: Float32Array, samples: number[], size: number): Float32Array {
  const out = new Float32Array(samples.length * size);
  samples.forEach((s, i) => out.set(source.subarray(s * size, (s + 1) * size), i * size));
  return out;
}

/** A float output's values on the CPU: read back (and released) when it lives in a GPU buffer. */
async function valuesOf(tensor: OrtCommon.Tensor): Promise<Float32Array> {
  if (tensor.location !== 'gpu-buffer') return floatOutput(tensor);
  const data = (await tensor.getData(true)) as Float32Array | Uint16Array;
  return floatOutput({ type: tensor.type, data } as OrtCommon.Tensor);
}

/**
 * The timestep as the export takes it. diffusers' ONNX pipeline casts with numpy (`np.array([t], dtype)`): an int64
 * input truncates a fractional timestep (Euler's interpolated ones) toward zero, as we do here.
 */
export function timestepTensor(ort: Pick<typeof OrtCommon, 'Tensor'>, type: string, t: Float32Array): OrtCommon.Tensor {
  if (type === 'int64') return new ort.Tensor('int64', BigInt64Array.from(t, (v) => BigInt(Math.trunc(v))), [t.length]);
  return floatInput(ort, type, t, [t.length]);
}

export { roleName };

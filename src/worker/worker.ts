// The module Web Worker that owns ORT, the GPU and the weights (DESIGN decision 5). It loads the model, then runs
// jobs one at a time: generations (a new one or a cancel aborts the running one between steps), LoRA training runs,
// and LoRA swaps. Every event of a job carries its id so the page can drop stale ones.
import { chwToRgba } from '../diffusion/image.ts';
import { openModelFolder, openModelUrl, openPreparedModel, readEveryFile, type OpenedModel, type LoadProgress } from './model-loader.ts';
import { checkFit, memoryPlaces, WASM_MEMORY_LIMIT, type ActivationLimits } from '../model/fit.ts';
import { createModelEngine, type Engine } from '../pipelines/index.ts';
import { chooseBackend, type BackendChoice } from './ort-backend.ts';
import { runTraining } from './training.ts';
import { watchDevice } from './gpu-recovery.ts';
import { openModelCache } from '../model/source/cache.ts';
import { resolveSeed } from '../diffusion/noise/index.ts';
import { isPrepared, type AnyManifest } from '../model/manifest.ts';
import type { ModelSource } from '../model/source/source.ts';
import { diffusersModelOf } from '../share/diffusers-script.ts';
import type { GenerateParams, ImageKind, LoraRole, TrainOptions, WorkerEvent, WorkerRequest } from './protocol.ts';

const post = (event: WorkerEvent, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(event, transfer);

interface Loaded {
  engine: Engine;
  /** The model's files, read (and checked) again as needed: nothing of them stays in the worker. */
  source: ModelSource;
  sessionOptions: BackendChoice['sessionOptions'];
  ort: BackendChoice['ort'];
  /** Set when the GPU device was lost: the next job recreates device, sessions and buffers (gpu-recovery.ts). */
  lost?: string;
  device?: GPUDevice;
  /** LoRA files swapped in with 'use-lora', re-applied when the engine is recreated. */
  swapped?: Partial<Record<LoraRole, Uint8Array | 'none' | undefined>>;
}

let loaded: Promise<Loaded> | undefined;
/** Jobs run one at a time in arrival order; a new generation aborts the generations still waiting or running. */
let queue: Promise<void> = Promise.resolve();
const jobs = new Map<number, { kind: WorkerRequest['type']; controller: AbortController }>();

self.onmessage = (message: MessageEvent<WorkerRequest>) => {
  const request = message.data;
  switch (request.type) {
    case 'init':
      loaded ??= init(request.backend, async (accept) => openModelUrl(request.modelUrl, await openModelCache(), accept));
      return;
    case 'load-files':
    case 'load-prepared': {
      const previous = loaded;
      const open: Open = request.type === 'load-files'
        ? (accept) => openModelFolder(request.files, accept)
        : (accept) => openPreparedModel(request.modelId, accept);
      loaded = (async () => {
        await (await previous?.catch(() => undefined))?.engine.release().catch(() => undefined);
        return init(request.backend, open);
      })();
      return;
    }
    case 'clear-cache':
      return void openModelCache().then(async (cache) => post({ type: 'cache-cleared', ...((await cache?.clear()) ?? { files: 0, bytes: 0 }) }));
    case 'cancel':
      return jobs.get(request.id)?.controller.abort();
    case 'generate':
      return enqueue(request.id, 'generate', (signal) => generate(request.id, request.params, request.images, signal, request.previews !== false));
    case 'train':
      return enqueue(request.id, 'train', (signal) => train(request.id, request.pairsJson, request.options, signal));
    case 'debug-lose-device':
      return void loaded?.then((l) => l.device?.destroy());
    case 'debug-crash':
      // A real allocation the engine refuses (1 TiB, as a model far too large would ask: RangeError), thrown where
      // nothing catches it.
      return void setTimeout(() => new Uint8Array(new ArrayBuffer(2 ** 40)).fill(1));
    case 'use-lora':
      return enqueue(request.id, 'use-lora', () => useLora(request.id, request.role, request.lora, request.name));
    case 'preview-lora':
      return enqueue(request.id, 'preview-lora', (signal) => previewLora(request.id, request.role, request.lora, request.params, signal));
    case 'count-tokens':
      // Not queued: the page's "12/75" counter must not wait behind a generation.
      return void loaded?.then(({ engine }) => {
        const { count, limit } = engine.tokens(request.prompt);
        post({ type: 'tokens', id: request.id, prompt: request.prompt, count, limit });
      }).catch((error) => post({ type: 'tokens', id: request.id, prompt: request.prompt, count: 0, limit: 0, error: describe(error) }));
  }
};

function enqueue(id: number, kind: WorkerRequest['type'], run: (signal: AbortSignal) => Promise<void>) {
  if (kind === 'generate') for (const job of jobs.values()) if (job.kind === 'generate') job.controller.abort();
  const controller = new AbortController();
  jobs.set(id, { kind, controller });
  queue = queue.then(() => run(controller.signal)).catch(() => undefined).finally(() => jobs.delete(id));
}

type Open = (accept: (manifest: AnyManifest) => void) => Promise<OpenedModel>;

async function init(backendPreference: 'auto' | 'webgpu' | 'wasm', open: Open): Promise<Loaded> {
  try {
    const backend = await chooseBackend(backendPreference);
    const limits = backend.device?.limits;
    // Before any weight is fetched: a model this browser cannot hold is refused with the numbers (src/model/fit.ts).
    const accept = (manifest: AnyManifest) => {
      const report = checkFit(manifest, {
        backend: backend.backend, maxBufferSize: limits?.maxBufferSize, maxStorageBufferBindingSize: limits?.maxStorageBufferBindingSize,
        deviceMemoryGiB: (navigator as { deviceMemory?: number }).deviceMemory, shaderF16: backend.device?.features.has('shader-f16'),
      });
      if (!report.fits) throw new Error(`${manifest.name} will not fit on ${backend.backend} here: ${report.problems.join('; ')}`);
      fitWarnings.push(...report.warnings);
    };
    const fitWarnings: string[] = [];
    const { source, notices: loadNotices } = await open(accept);
    const result = await startEngine(backend, source, (message, loaded, total) => post({ type: 'loading', message, loaded, total }));
    const notices = [...fitWarnings, ...loadNotices];
    const notice = notices.filter(Boolean).join('; ') || undefined;
    const { manifest } = source;
    post({ type: 'ready', backend: backend.backend, adapter: backend.adapter, reason: backend.reason, model: { ...result.engine.info, ...(isPrepared(manifest) ? { diffusers: diffusersModelOf(manifest, '') } : {}) }, notice });
    return result;
  } catch (error) {
    post({ type: 'error', message: describe(error), fatal: true });
    throw error;
  }
}

/** The engine on a backend; on WebGPU, device loss and uncaught GPU errors are reported and lead to recovery. */
async function startEngine(backend: BackendChoice, source: ModelSource, onProgress?: LoadProgress): Promise<Loaded> {
  const device = backend.device;
  const engine = await createModelEngine(backend.ort, source, { sessionOptions: backend.sessionOptions, gpu: device && { device }, onProgress, activationLimits: activationLimits(source.manifest, device) });
  const result: Loaded = { engine, source, sessionOptions: backend.sessionOptions, ort: backend.ort, device };
  if (device) watchDevice(device, (lost) => {
    result.lost = lost;
    post({ type: 'error', message: `${lost}; the next generation recreates the GPU device and sessions`, fatal: false });
  }, (message) => post({ type: 'error', message, fatal: false }));
  return result;
}

/**
 * What a UNet call's activations may take (the engine refuses a size beyond it with the numbers): on WASM what its
 * 4 GiB heap has left beside the weights it holds; on WebGPU the adapter's per-buffer limit (its memory total is not
 * exposed).
 */
function activationLimits(manifest: AnyManifest, device: GPUDevice | undefined): ActivationLimits {
  if (device) return { maxBufferBytes: Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize) };
  return { memoryBytes: WASM_MEMORY_LIMIT - memoryPlaces(manifest, 'wasm').wasm };
}

/** Recreates device and sessions after a device loss, reading the model's files again (one session at a time). */
async function ready(): Promise<Loaded> {
  const current = await loaded!;
  if (!current.lost) return current;
  loaded = (async () => {
    await current.engine.release().catch(() => undefined);
    const next = await startEngine(await chooseBackend('webgpu'), current.source);
    for (const [role, bytes] of Object.entries(current.swapped ?? {})) next.engine.useLora(role as LoraRole, bytes);
    next.swapped = current.swapped; // the same object watchDevice marks as lost
    return next;
  })();
  return loaded;
}

async function train(id: number, pairsJson: string, options: TrainOptions, signal: AbortSignal) {
  try {
    const { source, sessionOptions, device, ort } = await ready();
    const { manifest } = source;
    // The trainer's sessions take the model's files whole (their memory plan counts them).
    const files = await readEveryFile(source, (message, loaded, total) => post({ type: 'loading', message, loaded, total }));
    const result = await runTraining({
      ort, manifest, files, sessionOptions, pairsJson, options, signal, limits: trainingLimits(manifest, device),
      // fp16 frozen weights where ORT's device can run their float16 Casts (SwiftShader cannot: float32 there)
      weights: device?.features.has('shader-f16') ? 'fp16' : 'fp32',
      onPlan: (checkpoint, summary) => post({ type: 'train-plan', id, checkpoint, summary }),
      onStep: async ({ step, steps, loss, accuracy, stepsPerSecond }) => {
        post({ type: 'train-progress', id, report: { step, steps, loss, accuracy, stepsPerSecond } });
        await yieldToEvents();
      },
    });
    post({ type: 'train-done', id, lora: result.lora, steps: result.steps, warning: result.warning }, [result.lora.buffer]);
  } catch (error) {
    if ((error as Error).name === 'AbortError') post({ type: 'cancelled', id });
    else post({ type: 'error', id, message: `training failed: ${describe(error)}`, fatal: false });
  }
}

/**
 * What training may use: on WebGPU the adapter's per-buffer limit (its memory total is not exposed, so activation
 * checkpointing is chosen to fit 8 GiB, the class of adapters); on WASM what the 4 GiB heap has left beside
 * the engine's sessions, which stay loaded while training runs (as activationLimits; the heap never shrinks).
 */
function trainingLimits(manifest: AnyManifest, device: GPUDevice | undefined) {
  if (device) return { maxBufferBytes: Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize), budgetBytes: 8 * 2 ** 30 };
  return { memoryBytes: WASM_MEMORY_LIMIT - memoryPlaces(manifest, 'wasm').wasm };
}

async function useLora(id: number, role: LoraRole, lora: Uint8Array | null | 'none', name: string) {
  try {
    const current = await ready();
    const { skipped } = current.engine.useLora(role, lora ?? undefined);
    current.swapped = { ...current.swapped, [role]: lora ?? undefined };
    post({ type: 'lora-used', id, role, name, skipped });
  } catch (error) {
    post({ type: 'error', id, message: `cannot use ${name} as ${role === 'delta' ? 'δ' : 'η'}: ${describe(error)}`, fatal: false });
  }
}

/** Before/after of the image a LoRA changes; the engine's own η/δ are restored however the job ends. */
async function previewLora(id: number, role: LoraRole, lora: Uint8Array, params: GenerateParams, signal: AbortSignal) {
  try {
    const current = await ready();
    const kind: ImageKind = role === 'delta' ? 'npo' : 'baseline';
    const seed = resolveSeed(params.seed); // one seed for both images, also when the page asks for a random one
    const steps = 2 * params.steps;
    const once = async (offset: number) => (await current.engine.generate({ ...params, seed }, [kind], {
      signal, betweenSteps: yieldToEvents, onStep: (step) => post({ type: 'progress', id, step: offset + step, total: steps }),
    })).images.get(kind)!;
    const before = await once(0);
    current.engine.useLora(role, lora);
    let after: Float32Array;
    try {
      after = await once(params.steps);
    } finally {
      current.engine.useLora(role, current.swapped?.[role]);
    }
    const [width, height] = imageSize(current.engine, params);
    const [b, a] = [chwToRgba(before, 3, height, width), chwToRgba(after, 3, height, width)];
    post({ type: 'lora-preview', id, role, kind, width, height, seed, before: b, after: a }, [b.buffer, a.buffer]);
  } catch (error) {
    if ((error as Error).name === 'AbortError') post({ type: 'cancelled', id });
    else post({ type: 'error', id, message: `cannot preview the LoRA: ${describe(error)}`, fatal: false });
  }
}

/** Prepared models generate at the requested size; the embedded model has one size. */
function imageSize(engine: Engine, params: GenerateParams): [number, number] {
  const sized = engine.info.kind !== 'embedded';
  return sized ? [params.width ?? engine.info.width, params.height ?? engine.info.height] : [engine.info.width, engine.info.height];
}

async function generate(id: number, params: GenerateParams, images: ImageKind[], signal: AbortSignal, showPreviews: boolean) {
  if (signal.aborted) return post({ type: 'cancelled', id });
  const started = performance.now();
  try {
    const engine = (await ready()).engine;
    let lastShown = started;
    const { seed, images: outputs } = await engine.generate(params, images, {
      signal,
      betweenSteps: yieldToEvents,
      onStep: (step, total) => post({ type: 'progress', id, step, total }),
      // A preview only when the last one is a while ago: fast runs skip them, slow ones (seconds a step) show each step.
      wantPreview: () => showPreviews && performance.now() - lastShown >= PREVIEW_INTERVAL_MS,
      onPreview: (step, previews) => {
        lastShown = performance.now();
        for (const [kind, p] of previews) {
          const rgba = chwToRgba(p.chw, p.channels, p.height, p.width);
          post({ type: 'preview', id, kind: kind as ImageKind, step, width: p.width, height: p.height, rgba }, [rgba.buffer]);
        }
      },
    });
    const [width, height] = imageSize(engine, params);
    for (const [kind, chw] of outputs) {
      const rgba = chwToRgba(chw, 3, height, width);
      post({ type: 'image', id, kind, width, height, rgba, seed }, [rgba.buffer]);
    }
    post({ type: 'done', id, seed, milliseconds: performance.now() - started, stats: engine.stats() });
  } catch (error) {
    if ((error as Error).name === 'AbortError') post({ type: 'cancelled', id });
    else post({ type: 'error', id, message: describe(error), fatal: false });
  }
}

/** Least time between two previews of a generation. */
const PREVIEW_INTERVAL_MS = 250;

/** A macrotask boundary (faster than setTimeout's clamped delay), so queued messages such as cancel are handled. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

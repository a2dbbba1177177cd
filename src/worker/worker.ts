// The module Web Worker that owns ORT, the GPU and the weights (DESIGN decision 5). It loads the model, then serves
// generations one at a time: a new generation or a cancel aborts the running one between steps, and events of a
// generation always carry its id so the page can drop stale ones.
import { chwToRgba } from '../diffusion/image.ts';
import { loadModelDirectory } from './model-loader.ts';
import { createEngine, type Engine } from './engine.ts';
import { chooseBackend, ort } from './ort-backend.ts';
import type { GenerateParams, ImageKind, WorkerEvent, WorkerRequest } from './protocol.ts';

const post = (event: WorkerEvent, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(event, transfer);

let engine: Promise<Engine> | undefined;
let running: { id: number; controller: AbortController; finished: Promise<void> } | undefined;

self.onmessage = (message: MessageEvent<WorkerRequest>) => {
  const request = message.data;
  if (request.type === 'init') engine ??= init(request.modelUrl, request.backend);
  else if (request.type === 'cancel') {
    if (running?.id === request.id) running.controller.abort();
  } else if (request.type === 'generate') void startGeneration(request.id, request.params, request.images);
};

async function init(modelUrl: string, backendPreference: 'auto' | 'webgpu' | 'wasm'): Promise<Engine> {
  try {
    const backend = await chooseBackend(backendPreference);
    const { manifest, files } = await loadModelDirectory(modelUrl, (message, loaded, total) => post({ type: 'loading', message, loaded, total }));
    post({ type: 'loading', message: `starting ${backend.backend} sessions`, loaded: 1, total: 1 });
    const created = await createEngine(ort, manifest, files, { sessionOptions: backend.sessionOptions });
    post({ type: 'ready', backend: backend.backend, adapter: backend.adapter, model: created.info, notice: backend.notice });
    return created;
  } catch (error) {
    post({ type: 'error', message: describe(error), fatal: true });
    throw error;
  }
}

async function startGeneration(id: number, params: GenerateParams, images: ImageKind[]) {
  const previous = running;
  previous?.controller.abort();
  const controller = new AbortController();
  const finished = (async () => {
    await previous?.finished;
    await generate(id, params, images, controller.signal);
  })();
  running = { id, controller, finished };
  await finished;
  if (running?.id === id) running = undefined;
}

async function generate(id: number, params: GenerateParams, images: ImageKind[], signal: AbortSignal) {
  if (signal.aborted) return post({ type: 'cancelled', id });
  const started = performance.now();
  try {
    const ready = await engine!;
    const { seed, images: outputs } = await ready.generate(params, images, {
      signal,
      betweenSteps: yieldToEvents,
      onStep: (step, total) => post({ type: 'progress', id, step, total }),
    });
    const { width, height } = ready.info;
    for (const [kind, chw] of outputs) {
      const rgba = chwToRgba(chw, 3, height, width);
      post({ type: 'image', id, kind, width, height, rgba, seed }, [rgba.buffer]);
    }
    post({ type: 'done', id, seed, milliseconds: performance.now() - started });
  } catch (error) {
    if ((error as Error).name === 'AbortError') post({ type: 'cancelled', id });
    else post({ type: 'error', id, message: describe(error), fatal: false });
  }
}

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

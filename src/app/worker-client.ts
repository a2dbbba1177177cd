// The page's handle on the worker: starts it, sends typed requests, and hands every event to the listeners (the
// sampling store and the training store each keep to the request ids they issued).
// A worker that crashes after it started (an uncaught error: a failed allocation, an aborted WebAssembly module) is
// replaced: its unfinished requests end with an error naming the crash, a fresh worker loads the same model again
// (from the Cache API) with the LoRAs the page had swapped in, and the next 'ready' carries a notice saying so. The
// page's own state (settings, pairs, trained LoRAs) lives in the stores and is untouched.
import type { LoraRole, WorkerEvent, WorkerRequest } from '../worker/protocol.ts';

type Listener = (event: WorkerEvent) => void;
const listeners = new Set<Listener>();
let worker: Worker | undefined;
let lastId = 0;

/** What a fresh worker is sent again: the model load, and the last LoRA swapped in for each role. */
let loadRequest: WorkerRequest | undefined;
const swapped = new Map<LoraRole, Extract<WorkerRequest, { type: 'use-lora' }>>();
/** Requests the worker has not finished: they end with an error if it crashes. */
const outstanding = new Set<number>();
/** The worker posted something: an error event after that is a crash, not a failure to start. */
let started = false;
/** Set while a restarted worker loads: its 'ready' says what happened. */
let restartNotice: string | undefined;
/** Restarts in the last minute: a worker that crashes again and again is given up on. */
const restarts: number[] = [];
const MAX_RESTARTS_PER_MINUTE = 3;

/** Request ids are unique across both stores, so an event belongs to exactly one of them. */
export const nextRequestId = () => ++lastId;

/** Adds a listener; returns the function that removes it. */
export function onWorkerEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const emit = (event: WorkerEvent) => listeners.forEach((listener) => listener(event));

/** One worker per page, created once: React StrictMode runs effects twice, and ORT must not start twice. */
export function sendToWorker(request: WorkerRequest, transfer: Transferable[] = []): void {
  remember(request);
  worker ??= startWorker();
  worker.postMessage(request, transfer);
}

function remember(request: WorkerRequest): void {
  if (request.type === 'init' || request.type === 'load-files' || request.type === 'load-prepared') {
    loadRequest = request;
    swapped.clear(); // a new model starts from its own offsets
  }
  if (request.type === 'use-lora') swapped.set(request.role, request);
  if ('id' in request && request.type !== 'cancel') outstanding.add(request.id);
}

/** The events that finish a request. */
function settle(event: WorkerEvent): void {
  if (!('id' in event) || event.id === undefined) return;
  if (['done', 'cancelled', 'train-done', 'lora-used', 'tokens', 'error'].includes(event.type)) outstanding.delete(event.id);
}

function startWorker(): Worker {
  const created = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'npo-worker' });
  started = false;
  created.onmessage = (message: MessageEvent<WorkerEvent>) => {
    started = true;
    let event = message.data;
    settle(event);
    if (event.type === 'ready' && restartNotice) {
      event = { ...event, notice: [restartNotice, event.notice].filter(Boolean).join('; ') };
      restartNotice = undefined;
    }
    emit(event);
  };
  created.onerror = (error) => {
    const what = error.message || 'script error';
    if (!started) return emit({ type: 'error', message: `the worker failed to start: ${what}`, fatal: true });
    error.preventDefault();
    restart(created, what);
  };
  return created;
}

/** Replaces a crashed worker: its requests end with an error, a fresh one loads the model and LoRAs again. */
function restart(crashed: Worker, what: string): void {
  if (crashed !== worker) return; // an error from a worker already replaced
  crashed.terminate();
  worker = undefined;
  const now = Date.now();
  restarts.push(now);
  while (restarts[0] < now - 60_000) restarts.shift();
  const message = `the worker crashed (${what})`;
  for (const id of outstanding) emit({ type: 'error', id, message: `${message}; this request was lost`, fatal: false });
  outstanding.clear();
  if (restarts.length > MAX_RESTARTS_PER_MINUTE || !loadRequest) {
    return emit({ type: 'error', message: `${message} ${restarts.length} times within a minute; reload the page`, fatal: true });
  }
  emit({ type: 'error', message: `${message}; restarting it and loading the model again`, fatal: false });
  restartNotice = `recovered from a worker crash (${what}): the model was loaded again, your settings and files are kept`;
  worker = startWorker();
  worker.postMessage(loadRequest);
  for (const request of swapped.values()) worker.postMessage({ ...request, id: nextRequestId(), lora: request.lora?.slice() ?? null });
}

// The page's handle on the worker: starts it once, sends typed requests, and hands every event to the listeners
// (the sampling store and the training store each keep to the request ids they issued).
import type { WorkerEvent, WorkerRequest } from '../worker/protocol.ts';

type Listener = (event: WorkerEvent) => void;
const listeners = new Set<Listener>();
let worker: Worker | undefined;
let lastId = 0;

/** Request ids are unique across both stores, so an event belongs to exactly one of them. */
export const nextRequestId = () => ++lastId;

/** Adds a listener; returns the function that removes it. */
export function onWorkerEvent(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** One worker per page, created once: React StrictMode runs effects twice, and ORT must not start twice. */
export function sendToWorker(request: WorkerRequest, transfer: Transferable[] = []): void {
  worker ??= startWorker();
  worker.postMessage(request, transfer);
}

function startWorker(): Worker {
  const created = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'npo-worker' });
  const emit = (event: WorkerEvent) => listeners.forEach((listener) => listener(event));
  created.onmessage = (message: MessageEvent<WorkerEvent>) => emit(message.data);
  created.onerror = (error) => emit({ type: 'error', message: `the worker failed to start: ${error.message || 'script error'}`, fatal: true });
  return created;
}

// The page's handle on the worker: starts it, sends typed requests, and hands every event to one listener.
import type { WorkerEvent, WorkerRequest } from '../worker/protocol.ts';

export interface WorkerClient {
  send(request: WorkerRequest): void;
}

let client: WorkerClient | undefined;

/** One worker per page, created once: React StrictMode runs effects twice, and ORT must not start twice. */
export function connectWorker(onEvent: (event: WorkerEvent) => void): WorkerClient {
  if (client) return client;
  const worker = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'npo-worker' });
  worker.onmessage = (message: MessageEvent<WorkerEvent>) => onEvent(message.data);
  worker.onerror = (error) => onEvent({ type: 'error', message: `the worker failed to start: ${error.message || 'script error'}`, fatal: true });
  client = { send: (request) => worker.postMessage(request) };
  return client;
}

// The page's side of preparing a model in the browser: starts the prepare worker on the first "Prepare" (so a
// session that never prepares starts nothing and contacts nobody), follows its progress with the time left, cancels
// it, and keeps the list of models prepared in this browser's storage (src/model/source/opfs.ts), which opens and
// removes them. Opening one reloads the page with `?prepared=<id>` (read offline from browser storage).
import { create } from 'zustand';
import { listPrepared, removePrepared, type PreparedEntry } from '../model/source/opfs.ts';
import type { PrepareEvent, PrepareInputs, PrepareRequest } from '../worker/prepare-protocol.ts';

export interface PrepareRun {
  id: number;
  stage: string;
  done: number;
  total: number;
  network: number;
  /** When the first byte was counted, for the rate and the time left. */
  startedAt: number;
}

interface PrepareState {
  running?: PrepareRun;
  /** The last preparation's outcome. */
  result?: { modelId: string; name: string; bytes: number; notes: string[]; unchecked: string[] };
  error?: string;
  prepared: Omit<PreparedEntry, 'manifest'>[];
  /** What the browser lets this site store (navigator.storage.estimate). */
  storage?: { usage: number; quota: number };
  removed?: { id: string; bytes: number };
}

export const usePrepare = create<PrepareState>(() => ({ prepared: [] }));

let worker: Worker | undefined;
let lastId = 0;

function startWorker(): Worker {
  const created = new Worker(new URL('../worker/prepare-worker.ts', import.meta.url), { type: 'module', name: 'npo-prepare' });
  created.onmessage = (message: MessageEvent<PrepareEvent>) => handle(message.data);
  created.onerror = (event) => usePrepare.setState({ running: undefined, error: `the prepare worker failed: ${event.message}` });
  return created;
}

function handle(event: PrepareEvent) {
  const { running } = usePrepare.getState();
  if (!running || event.id !== running.id) return;
  if (event.type === 'prepare-progress') return usePrepare.setState({ running: { ...running, stage: event.stage, done: event.done, total: event.total, network: event.network } });
  usePrepare.setState({ running: undefined });
  if (event.type === 'prepare-done') usePrepare.setState({ result: { modelId: event.modelId, name: event.name, bytes: event.bytes, notes: event.notes, unchecked: event.unchecked } });
  else usePrepare.setState({ error: event.cancelled ? 'preparation cancelled; nothing was kept' : event.message });
  void refreshPrepared();
}

export function startPrepare(inputs: PrepareInputs) {
  if (usePrepare.getState().running) return;
  const id = ++lastId;
  usePrepare.setState({ running: { id, stage: 'checking the inputs', done: 0, total: 0, network: 0, startedAt: performance.now() }, result: undefined, error: undefined });
  void navigator.storage?.persist?.().catch(() => false); // ask that the browser not evict prepared models
  worker ??= startWorker();
  worker.postMessage({ type: 'prepare', id, inputs } satisfies PrepareRequest);
}

export function cancelPrepare() {
  const { running } = usePrepare.getState();
  if (running) worker?.postMessage({ type: 'cancel', id: running.id } satisfies PrepareRequest);
}

/** Reads the models in browser storage (no network) and the storage estimate. */
export async function refreshPrepared() {
  try {
    const prepared = (await listPrepared()).map(({ manifest: _manifest, ...entry }) => entry);
    const estimate = await navigator.storage.estimate().catch(() => undefined);
    usePrepare.setState({ prepared, storage: estimate && { usage: estimate.usage ?? 0, quota: estimate.quota ?? 0 } });
  } catch (error) {
    usePrepare.setState({ error: (error as Error).message });
  }
}

export async function removePreparedModel(id: string) {
  try {
    const bytes = await removePrepared(id);
    usePrepare.setState({ removed: { id, bytes } });
  } catch (error) {
    usePrepare.setState({ error: `could not remove ${id}: ${(error as Error).message}` });
  }
  await refreshPrepared();
}

/** Opens a prepared model: the page reloads with `?prepared=<id>` (and without `?model=`). */
export function openPrepared(id: string) {
  const query = new URLSearchParams(location.search);
  query.delete('model');
  query.set('prepared', id);
  location.search = query.toString();
}

/** Seconds left at the rate so far (undefined until a second has passed). */
export function secondsLeft(run: PrepareRun, now = performance.now()): number | undefined {
  const elapsed = (now - run.startedAt) / 1000;
  if (elapsed < 1 || run.done <= 0) return undefined;
  return ((run.total - run.done) * elapsed) / run.done;
}

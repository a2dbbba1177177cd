// The training panel's state (zustand): a person's pairs.json, the training settings, per-step progress, and the
// trained LoRA, which can be used as δ (or η) at once or downloaded. Also LoRA files a person brings.
import { create } from 'zustand';
import type { LoraRole, TrainOptions, TrainStep, WorkerEvent } from '../worker/protocol.ts';
import { nextRequestId, onWorkerEvent, sendToWorker } from './worker-client.ts';

export interface TrainingState {
  pairs?: { name: string; json: string };
  options: TrainOptions;
  status: 'idle' | 'training' | 'done';
  history: TrainStep[];
  trained?: { lora: Uint8Array; steps: number; reverse: boolean };
  message?: string;
  error?: string;
  running?: number;
  requests: number[];
  setPairs(name: string, json: string): void;
  setOption<K extends keyof TrainOptions>(key: K, value: TrainOptions[K]): void;
  train(): void;
  cancel(): void;
  useLora(role: LoraRole, lora: Uint8Array | null, name: string): void;
}

/** Defaults sized for the embedded model in a browser: NPO (reversed pairs), rank 4, a few dozen steps. */
export const DEFAULT_TRAIN_OPTIONS: TrainOptions = { reverse: true, rank: 4, steps: 40, beta: 500, lr: 1e-3, batch: 4, seed: 0 };

export const useTraining = create<TrainingState>()((set, get) => ({
  options: DEFAULT_TRAIN_OPTIONS,
  status: 'idle',
  history: [],
  requests: [],
  setPairs: (name, json) => set({ pairs: { name, json }, error: undefined }),
  setOption: (key, value) => set((s) => ({ options: { ...s.options, [key]: value } })),
  train() {
    const { pairs, options, status } = get();
    if (!pairs || status === 'training') return;
    const id = nextRequestId();
    set((s) => ({ status: 'training', running: id, requests: [...s.requests, id], history: [], error: undefined, message: undefined }));
    sendToWorker({ type: 'train', id, pairsJson: pairs.json, options });
  },
  cancel() {
    const { running } = get();
    if (running) sendToWorker({ type: 'cancel', id: running });
  },
  useLora(role, lora, name) {
    const id = nextRequestId();
    set((s) => ({ requests: [...s.requests, id], error: undefined }));
    // A copy goes to the worker, so the trained LoRA stays here for download.
    sendToWorker({ type: 'use-lora', id, role, lora: lora ? lora.slice() : null, name });
  },
}));

function handle(event: WorkerEvent) {
  const state = useTraining.getState();
  if (!('id' in event) || event.id === undefined || !state.requests.includes(event.id)) return;
  const set = useTraining.setState;
  switch (event.type) {
    case 'train-progress':
      return set((s) => ({ history: [...s.history, event.report] }));
    case 'train-done':
      return set({ status: 'done', running: undefined, trained: { lora: event.lora, steps: event.steps, reverse: state.options.reverse }, message: event.warning });
    case 'cancelled':
      return set({ status: 'idle', running: undefined, message: 'training cancelled' });
    case 'lora-used':
      return set({ message: `now using ${event.name} as ${event.role === 'delta' ? 'δ' : 'η'}`
        + (event.skipped ? ` (${event.skipped} keys for layers other than the attention projections were ignored)` : '') });
    case 'error':
      return set({ status: state.running === event.id ? 'idle' : state.status, running: state.running === event.id ? undefined : state.running, error: event.message });
  }
}

onWorkerEvent(handle);

/** Saves bytes as a file through a temporary link (no server round trip). */
export function download(bytes: Uint8Array, name: string) {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }));
  const link = Object.assign(document.createElement('a'), { href: url, download: name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

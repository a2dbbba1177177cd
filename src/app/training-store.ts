// The training panel's state (zustand): a person's pairs.json, the training settings, per-step progress, and the
// trained LoRA, which can be used as δ (or η) at once or downloaded. Also LoRA files a person brings, and the pairs a
// person labels by clicking the better image of a generation (src/share/picks.ts), exportable and trainable at once.
// Image folders, zips and Pick-a-Pic shards (pair-source-files.ts) are prepared into a pairs.json at the training size
// when chosen and again at train time if the size changed since. Every set of pairs, whatever its source, is checked
// as the trainer will (pair-check.ts) before it replaces the current one: a broken set is refused with the trainer's
// error, and the pairs loaded before stay.
import { create } from 'zustand';
import type { GenerateParams, ImageKind, LoraRole, TrainOptions, TrainStep, WorkerEvent } from '../worker/protocol.ts';
import { addPick, picksToPairs, type Pick } from '../share/picks.ts';
import { nextRequestId, onWorkerEvent, sendToWorker } from './worker-client.ts';
import type { PairSource } from './pair-source-files.ts';
import { checkPairs, type CheckedPairs } from './pair-check.ts';
import { usePlayground } from './store.ts';
import type { CheckpointMode } from '../train/unet-segments.ts';
import { RELEASED_NPO_BETA } from '../train/dpo-beta.ts';

export interface TrainingState {
  /** The training set: a pairs.json's text, or a source's pairs prepared at `size`² (re-read when the size changes). */
  pairs?: { name: string; json: string; source?: PairSource; size?: number };
  /** Progress of reading a source ("prepared 12 pairs"), while it is read. */
  preparing?: string;
  options: TrainOptions;
  /** The running or last run's memory plan: the activation checkpointing chosen, in one line. */
  plan?: { checkpoint: CheckpointMode; summary: string };
  status: 'idle' | 'training' | 'done';
  history: TrainStep[];
  trained?: { lora: Uint8Array; steps: number; reverse: boolean };
  message?: string;
  error?: string;
  running?: number;
  requests: number[];
  picks: Pick[];
  /**
   * The trained LoRA's effect on the current prompt and seed, made automatically when training ends: the image it
   * changes (δ: with NPO, η: without) with the η/δ in use (before) and with the trained one (after).
   */
  effect?: LoraEffect;
  /** Which image of the current two was picked last (shown on the pick buttons). */
  picked?: { key: string; kind: ImageKind };
  /** Records the shown image of `kind` as preferred over the other one. */
  pick(kind: ImageKind): void;
  /** Adds any pick (e.g. between two seeds of one image), replacing an earlier pick with the same key. */
  addPick(pick: Pick): void;
  clearPicks(): void;
  /** pairs.json of the picks (src/train/pairs.ts format). */
  picksJson(): string;
  /** Makes the picks the training set. */
  usePicks(): Promise<void>;
  /** Makes a pairs.json's text the training set, once it passes the trainer's checks. */
  setPairs(name: string, json: string): Promise<void>;
  /** Reads a folder, zip, parquet shard or pairs.json at the current training size and makes it the training set. */
  loadSource(source: PairSource): Promise<void>;
  setOption<K extends keyof TrainOptions>(key: K, value: TrainOptions[K]): void;
  train(): Promise<void>;
  cancel(): void;
  /** null restores the model's own LoRA; 'none' runs without one. */
  useLora(role: LoraRole, lora: Uint8Array | null | 'none', name: string): void;
}

export interface LoraEffect {
  id: number;
  role: LoraRole;
  params: GenerateParams;
  progress: { step: number; total: number };
  result?: { kind: ImageKind; width: number; height: number; seed: number; before: Uint8ClampedArray; after: Uint8ClampedArray };
}

/** Asks the worker for the before/after of a trained LoRA at the page's current settings (seed −1: the last seed shown). */
function previewEffect(lora: Uint8Array, role: LoraRole): LoraEffect | undefined {
  const page = usePlayground.getState();
  if (page.status === 'loading' || page.status === 'failed') return undefined;
  const params = { ...page.params, seed: page.params.seed === -1 ? page.lastSeed ?? -1 : page.params.seed };
  const id = nextRequestId();
  useTraining.setState((s) => ({ requests: [...s.requests, id] }));
  sendToWorker({ type: 'preview-lora', id, role, lora: lora.slice(), params });
  return { id, role, params, progress: { step: 0, total: 2 * params.steps } };
}

/** Defaults sized for the embedded model in a browser: NPO (reversed pairs), rank 4, a few dozen steps. */
export const DEFAULT_TRAIN_OPTIONS: TrainOptions = { reverse: true, rank: 4, steps: 40, beta: 500, lr: 1e-3, batch: 4, seed: 0 };

export const useTraining = create<TrainingState>()((set, get) => ({
  options: DEFAULT_TRAIN_OPTIONS,
  status: 'idle',
  history: [],
  requests: [],
  picks: [],
  pick(kind) {
    const { images } = usePlayground.getState();
    const winner = images[kind], loser = images[kind === 'npo' ? 'baseline' : 'npo'];
    if (!winner || !loser || winner.width !== loser.width || winner.height !== loser.height) return;
    const key = `${images.baseline!.key}|${images.npo!.key}`;
    const pick: Pick = { prompt: winner.prompt ?? usePlayground.getState().params.prompt, winner: winner.rgba, loser: loser.rgba, width: winner.width, height: winner.height, key };
    set((s) => ({ picks: addPick(s.picks, pick), picked: { key, kind } }));
  },
  addPick: (pick) => set((s) => ({ picks: addPick(s.picks, pick) })),
  clearPicks: () => set({ picks: [], picked: undefined }),
  picksJson: () => JSON.stringify(picksToPairs(get().picks)),
  async usePicks() {
    const { picks } = get();
    if (picks.length > 0) await get().setPairs(`${picks.length} picked pairs`, get().picksJson());
  },
  async setPairs(name, json) {
    if (get().status === 'training') return set({ error: 'stop the training before loading other pairs' });
    set({ error: undefined, message: undefined });
    await choose(name, () => Promise.resolve({ pairs: { name, json }, checked: { json } }));
  },
  async loadSource(source) {
    if (get().status === 'training') return set({ error: 'stop the training before loading other pairs' });
    set({ error: undefined, message: undefined });
    await prepare(source);
  },
  setOption: (key, value) => set((s) => ({ options: { ...s.options, [key]: value } })),
  async train() {
    const { pairs, options, status, preparing } = get();
    if (!pairs || status === 'training' || preparing) return;
    if (pairs.source && pairs.size !== trainingSize(options) && !(await prepare(pairs.source))) return;
    const json = get().pairs?.json;
    if (!json) return;
    const id = nextRequestId();
    set((s) => ({ status: 'training', running: id, requests: [...s.requests, id], history: [], plan: undefined, error: undefined, message: undefined }));
    sendToWorker({ type: 'train', id, pairsJson: json, options });
  },
  cancel() {
    const { running, effect } = get();
    if (running) sendToWorker({ type: 'cancel', id: running });
    else if (effect && !effect.result) sendToWorker({ type: 'cancel', id: effect.id });
  },
  useLora(role, lora, name) {
    const id = nextRequestId();
    set((s) => ({ requests: [...s.requests, id], error: undefined }));
    // A copy goes to the worker, so the trained LoRA stays here for download.
    sendToWorker({ type: 'use-lora', id, role, lora: lora instanceof Uint8Array ? lora.slice() : lora, name });
  },
}));

/**
 * The side of the square images a source is prepared at: the chosen training resolution, else the page's image size
 * when square (what the person generates at), else the model's own size.
 */
export function trainingSize(options: TrainOptions): number {
  const { params, model } = usePlayground.getState();
  const square = params.width !== undefined && params.width === params.height ? params.width : undefined;
  return options.resolution ?? square ?? model?.width ?? 0;
}

/** Reads `source` at the training size into the training set; errors go to the panel, naming the broken file. */
async function prepare(source: PairSource): Promise<boolean> {
  const size = trainingSize(useTraining.getState().options);
  if (!(size > 0)) return (useTraining.setState({ error: 'load a model first: image pairs are prepared at its size' }), false);
  return choose(source.name, async () => {
    const read = await source.read(size, (count) => useTraining.setState({ preparing: `reading ${source.name}: ${count} pair${count === 1 ? '' : 's'}…` }));
    if ('json' in read) return { pairs: { name: source.name, json: read.json }, checked: read };
    const count = read.file.pairs.length;
    return {
      pairs: { name: `${source.name} (${count} pair${count === 1 ? '' : 's'} at ${size}×${size})`, json: JSON.stringify(read.file), source, size },
      checked: { file: read.file },
      message: read.notes.length ? `${source.name}: ${read.notes.join('; ')}` : undefined,
    };
  });
}

/**
 * Reads a set of pairs, checks every pair as the trainer will, and only then makes it the training set (the last
 * run's curve goes with the old set). A set that fails keeps the one before, and its error names what is wrong.
 */
async function choose(name: string, read: () => Promise<{ pairs: NonNullable<TrainingState['pairs']>; checked: CheckedPairs; message?: string }>): Promise<boolean> {
  const set = useTraining.setState;
  const { model } = usePlayground.getState();
  if (!model) return (set({ error: 'load a model first: pairs are checked against it' }), false);
  set({ preparing: `reading ${name}…` });
  try {
    const { pairs, checked, message } = await read();
    set({ preparing: `checking ${name}…` });
    // A prepared source is at its preparation size; a pairs.json trains at the chosen resolution, else its own size.
    checkPairs(checked, model, pairs.size ?? useTraining.getState().options.resolution);
    set({ pairs, message, history: [] });
    return true;
  } catch (error) {
    set({ error: `${name} was not loaded: ${error instanceof Error ? error.message : String(error)}` });
    return false;
  } finally {
    set({ preparing: undefined });
  }
}

function handle(event: WorkerEvent) {
  const state = useTraining.getState();
  if (!('id' in event) || event.id === undefined || !state.requests.includes(event.id)) return;
  const set = useTraining.setState;
  switch (event.type) {
    case 'train-plan':
      return set({ plan: { checkpoint: event.checkpoint, summary: event.summary } });
    case 'train-progress':
      return set((s) => ({ history: [...s.history, event.report] }));
    case 'train-done': {
      const reverse = state.options.reverse;
      set({ status: 'done', running: undefined, trained: { lora: event.lora, steps: event.steps, reverse }, message: event.warning, effect: undefined });
      return set({ effect: previewEffect(event.lora, reverse ? 'delta' : 'eta') });
    }
    case 'progress':
      return state.effect?.id === event.id ? set({ effect: { ...state.effect, progress: { step: event.step, total: event.total } } }) : undefined;
    case 'lora-preview':
      if (state.effect?.id !== event.id) return;
      return set({ effect: { ...state.effect, result: { kind: event.kind, width: event.width, height: event.height, seed: event.seed, before: event.before, after: event.after } } });
    case 'cancelled':
      if (state.effect?.id === event.id) return set({ effect: undefined, message: 'preview cancelled' });
      return set({ status: 'idle', running: undefined, message: 'training cancelled' });
    case 'lora-used':
      return set({ message: `now using ${event.name} as ${event.role === 'delta' ? 'δ' : 'η'}`
        + (event.skipped ? ` (${event.skipped} keys for layers other than the attention projections were ignored)` : '') });
    case 'error':
      if (state.effect?.id === event.id) return set({ effect: undefined, error: event.message });
      return set({ status: state.running === event.id ? 'idle' : state.status, running: state.running === event.id ? undefined : state.running, error: event.message });
  }
}

onWorkerEvent(handle);

/** β_dpo the panel proposes for a model family: the released SDXL δ's 2000 on an SDXL model, else the default 500. */
export function panelBeta(kind: string | undefined): number {
  return kind === 'sdxl' ? RELEASED_NPO_BETA.sdxl : DEFAULT_TRAIN_OPTIONS.beta;
}

// A newly loaded model of another family brings its own β_dpo, unless the person has set one of their own.
usePlayground.subscribe((s, prev) => {
  if (s.model?.kind === prev.model?.kind) return;
  const { options } = useTraining.getState();
  if (options.beta === panelBeta(prev.model?.kind)) useTraining.setState({ options: { ...options, beta: panelBeta(s.model?.kind) } });
});

/** Saves bytes as a file through a temporary link (no server round trip). */
export function download(bytes: Uint8Array, name: string, type = 'application/octet-stream') {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const link = Object.assign(document.createElement('a'), { href: url, download: name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// The page's CLIP score for real models: which CLIP folder is loaded (in its own worker, src/worker/clip-worker.ts)
// and the score of each shown image, asked once per image and prompt. A new folder starts a new `load`; answers for
// an older one are dropped.
import { create } from 'zustand';
import { filesFromList } from '../eval/clip-score.ts';
import type { ClipEvent, ClipRequest } from '../worker/clip-worker.ts';

export type ClipResult = { state: 'pending' } | { state: 'done'; score: number; cosine: number; ms: number } | { state: 'failed'; message: string };

/** What can be scored: an image shown on the page (store.ts ShownImage, sweep cells). */
export interface ScorableImage { key: string; rgba: Uint8ClampedArray; width: number; height: number; prompt?: string }

interface ClipState {
  status: 'none' | 'loading' | 'ready' | 'failed';
  load: number;
  folder?: string;
  description?: string;
  error?: string;
  results: Record<string, ClipResult>;
  choose(files: File[]): void;
  request(image: ScorableImage): void;
}

/** The result's key: the same image under another prompt is another score. */
export const clipKey = (image: ScorableImage) => `${image.key}\u0000${image.prompt ?? ''}`;

let worker: Worker | undefined;

function send(request: ClipRequest): void {
  if (!worker) {
    worker = new Worker(new URL('../worker/clip-worker.ts', import.meta.url), { type: 'module', name: 'npo-clip' });
    worker.onmessage = (message: MessageEvent<ClipEvent>) => useClip.getState().load === message.data.load && receive(message.data);
    worker.onerror = (error) => useClip.setState({ status: 'failed', error: `the CLIP worker failed to start: ${error.message || 'script error'}` });
  }
  worker.postMessage(request);
}

function receive(event: ClipEvent): void {
  if (event.type === 'loaded') return useClip.setState({ status: 'ready', description: event.description });
  if (event.type === 'scored') {
    return useClip.setState((s) => ({ results: { ...s.results, [event.key]: { state: 'done', score: event.score, cosine: event.cosine, ms: event.ms } } }));
  }
  if (event.key !== undefined) return useClip.setState((s) => ({ results: { ...s.results, [event.key!]: { state: 'failed', message: event.message } } }));
  useClip.setState({ status: 'failed', error: `CLIP folder not loaded: ${event.message}` });
}

export const useClip = create<ClipState>((set, get) => ({
  status: 'none',
  load: 0,
  results: {},

  choose(list) {
    if (list.length === 0) return;
    const load = get().load + 1;
    const folder = list[0].webkitRelativePath.split('/')[0] || list[0].name;
    set({ status: 'loading', load, folder, description: undefined, error: undefined, results: {} });
    send({ type: 'load', load, files: [...filesFromList(list)] });
  },

  request(image) {
    const { status, load, results } = get();
    const key = clipKey(image);
    if (status !== 'ready' || results[key]) return;
    set({ results: { ...results, [key]: { state: 'pending' } } });
    send({ type: 'score', load, key, rgba: image.rgba, width: image.width, height: image.height, prompt: image.prompt ?? '' });
  },
}));

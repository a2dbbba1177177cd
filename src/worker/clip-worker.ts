// The CLIP scorer's own worker: a CLIP model folder (the user's Files, cloned here, never uploaded) loaded by
// @huggingface/transformers on ORT's WASM backend, scoring the page's images for their prompt. Separate from the
// sampling worker so that scoring never waits behind a generation and a failed CLIP load cannot break sampling.
// transformers.js is imported only here, and only when a folder is chosen (a chunk of its own), after ORT is pointed
// at this origin's WebAssembly files: left alone, transformers.js would point ORT at a CDN.
import { loadClipScorer, type ClipScorer } from '../eval/clip-score.ts';
import { ort, useOwnWasmFiles } from './ort-backend.ts';

export type ClipRequest =
  | { type: 'load'; load: number; files: [string, Blob][] }
  | { type: 'score'; load: number; key: string; rgba: Uint8ClampedArray; width: number; height: number; prompt: string };

export type ClipEvent =
  | { type: 'loaded'; load: number; description: string }
  | { type: 'scored'; load: number; key: string; score: number; cosine: number; ms: number }
  | { type: 'failed'; load: number; key?: string; message: string };

let current: { load: number; scorer: Promise<ClipScorer> } | undefined;
/** One request at a time: ORT's WASM sessions must not run concurrently. */
let queue: Promise<unknown> = Promise.resolve();

async function load(request: Extract<ClipRequest, { type: 'load' }>): Promise<ClipEvent> {
  const previous = current;
  useOwnWasmFiles();
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1;
  const lib = await import('@huggingface/transformers');
  const scorer = loadClipScorer(lib, new Map(request.files), 'wasm');
  current = { load: request.load, scorer };
  void previous?.scorer.then((s) => s.dispose(), () => undefined);
  return { type: 'loaded', load: request.load, description: (await scorer).description };
}

async function score(request: Extract<ClipRequest, { type: 'score' }>): Promise<ClipEvent> {
  if (!current || current.load !== request.load) throw new Error('that CLIP folder is no longer loaded');
  const started = performance.now();
  const result = await (await current.scorer).score(request.rgba, request.width, request.height, request.prompt);
  return { type: 'scored', load: request.load, key: request.key, ...result, ms: performance.now() - started };
}

self.onmessage = (message: MessageEvent<ClipRequest>) => {
  const request = message.data;
  queue = queue.then(() => (request.type === 'load' ? load(request) : score(request)))
    .catch((error: Error): ClipEvent => ({ type: 'failed', load: request.load, key: request.type === 'score' ? request.key : undefined, message: error.message }))
    .then((event) => self.postMessage(event));
};

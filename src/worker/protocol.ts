// The one message protocol between the page and the worker that owns ORT, the GPU and the weights.
// Page → worker: WorkerRequest. Worker → page: WorkerEvent. Every generation carries the page's `id`, so late events
// of a cancelled or superseded generation can be recognised and dropped.

export type BackendPreference = 'auto' | 'webgpu' | 'wasm';
export type Backend = 'webgpu' | 'wasm';
export type ImageKind = 'baseline' | 'npo';

export interface GenerateParams {
  prompt: string;
  negativePrompt: string;
  seed: number;
  steps: number;
  omega: number;
  alpha: number;
  beta: number;
  scheduler: string;
}

export type WorkerRequest =
  | { type: 'init'; modelUrl: string; backend: BackendPreference }
  | { type: 'generate'; id: number; params: GenerateParams; images: ImageKind[] }
  | { type: 'cancel'; id: number };

export interface ModelInfo {
  name: string;
  status: 'standin' | 'trained';
  width: number;
  height: number;
  loraSites: number;
  hasEta: boolean;
  hasDelta: boolean;
  schedulers: string[];
  defaults: GenerateParams;
}

export type WorkerEvent =
  | { type: 'loading'; message: string; loaded: number; total: number }
  | { type: 'ready'; backend: Backend; adapter: string; model: ModelInfo; notice?: string }
  | { type: 'progress'; id: number; step: number; total: number }
  | { type: 'image'; id: number; kind: ImageKind; width: number; height: number; rgba: Uint8ClampedArray; seed: number }
  | { type: 'done'; id: number; seed: number; milliseconds: number }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id?: number; message: string; fatal: boolean };

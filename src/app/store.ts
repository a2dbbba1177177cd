// The page's state (zustand): the controls, what each image shows, and the worker's status. It decides what a
// generation must recompute: the baseline depends on prompt, negative prompt, seed, steps, ω and scheduler; the NPO
// image also on α and β. So moving α or β recomputes only the NPO image, and nothing recomputes what did not change.
// The URL always holds the current settings (src/share/settings-url.ts), so a copied link reproduces the images.
// The η switch ("η (DPO) on both branches") is the worker's η: the model's, or none ('use-lora' with 'none'). A model
// opens with it as its link says, else as held-out.ts decides (the embedded model: off, base vs base+NPO).
import { create } from 'zustand';
import type { Backend, GenerateParams, ImageKind, ModelInfo, WorkerEvent } from '../worker/protocol.ts';
import { etaFromQuery, paramsFromQuery, queryWithParams } from '../share/settings-url.ts';
import { nextRequestId, onWorkerEvent, sendToWorker } from './worker-client.ts';
import { opensWithEta } from './held-out.ts';

export interface ShownImage { key: string; rgba: Uint8ClampedArray; width: number; height: number; seed: number; /** The prompt it was made for. */ prompt?: string }

export type CompareView = 'side-by-side' | 'wipe' | 'difference';

/** A finished generation with both images current: what the history keeps. */
export interface Generated { params: GenerateParams; images: Record<ImageKind, ShownImage> }

export interface PlaygroundState {
  params: GenerateParams;
  status: 'loading' | 'ready' | 'generating' | 'failed';
  loading?: { message: string; loaded: number; total: number };
  backend?: Backend;
  adapter?: string;
  /** Why the worker runs on `backend` (ort-backend.ts). */
  backendReason?: string;
  model?: ModelInfo;
  notice?: string;
  error?: string;
  progress: { step: number; total: number };
  images: Partial<Record<ImageKind, ShownImage>>;
  /** Low-resolution previews of the running generation, shown over the images until its results arrive. */
  previews: Partial<Record<ImageKind, ShownImage & { step: number }>>;
  /**
   * Whether the worker sends those previews ("Step previews", `?previews=off`): each costs the GPU loop a small
   * read-back, so without them a generation's read-backs do not grow with its steps.
   */
  stepPreviews: boolean;
  running?: { id: number; images: ImageKind[]; keys: Record<ImageKind, string>; params: GenerateParams };
  /** Reduced-step images made while a slider is dragged (drag-preview.ts), shown until the full-step ones arrive. */
  dragPreview?: { steps: number; images: Partial<Record<ImageKind, ShownImage>> };
  view: CompareView;
  /** The wipe divider's position, 0 (left edge) to 1. */
  wipe: number;
  /** Side-by-side panes and the compare frame at the image's own size (100 %) instead of scaled. */
  actualSize: boolean;
  lastSeed?: number;
  lastMilliseconds?: number;
  /** Bumped when η or δ is replaced, so images made with the old weights count as stale. */
  loraVersions: { eta: number; delta: number };
  /** The η and δ in use, by name (undefined: the model's own since it loaded; NO_ETA: η switched off). */
  loraNames: { eta?: string; delta?: string };
  /** What the last "remove downloaded models" freed. */
  cacheCleared?: { files: number; bytes: number };
  setParam<K extends keyof GenerateParams>(key: K, value: GenerateParams[K]): void;
  /** Applies several settings at once (a dropped PNG, a history entry). */
  setParams(params: Partial<GenerateParams>): void;
  /** Shows images made earlier (a history entry) under their settings, without regenerating when still valid. */
  restore(params: GenerateParams, images: Record<ImageKind, Omit<ShownImage, 'key'>>, sameWeights: boolean): void;
  setView(view: CompareView): void;
  setWipe(position: number): void;
  toggleActualSize(): void;
  setNotice(notice?: string): void;
  setStepPreviews(on: boolean): void;
  /**
   * Turns η on (the model's) or off; resolves once the worker uses it (false if it refused). The page regenerates
   * then, unless `regenerate` is false (a restore that brings its own images or settings).
   */
  setEta(on: boolean, regenerate?: boolean): Promise<boolean>;
  generate(): void;
  cancel(): void;
}

/** The names the page gives the model's own η and δ, and η switched off. */
export const MODEL_LORA_NAMES = { eta: "the model's η", delta: "the model's δ" } as const;
export const NO_ETA = 'none (the base model)';

/** Whether the page has an η to switch: the model's, or a LoRA brought as η. */
export const hasEtaSwitch = (s: Pick<PlaygroundState, 'model' | 'loraNames'>) => Boolean(s.model?.hasEta || s.loraNames.eta);
/** Whether η is on both branches now. */
export const etaOn = (s: Pick<PlaygroundState, 'loraNames'>) => s.loraNames.eta !== NO_ETA;
/** The η switch where the page has one, for links and PNG parameters. */
export const etaSetting = (s: Pick<PlaygroundState, 'model' | 'loraNames'>) => (hasEtaSwitch(s) ? etaOn(s) : undefined);
/** Whether a name means the model's own LoRA in `role` (undefined: nothing was swapped in since the model loaded). */
export const isModelLora = (name: string | undefined, role: 'eta' | 'delta') => name === undefined || name === MODEL_LORA_NAMES[role];

const initialParams: GenerateParams = { prompt: '', negativePrompt: '', seed: 42, steps: 20, omega: 4, alpha: 1, beta: 1, scheduler: 'ddim' };

/** What each image depends on: θ_pos = θ + η serves both images, θ_neg = θ + α·η + β·δ only the NPO one. */
export function imageKeys(p: GenerateParams, seed: number, versions: { eta: number; delta: number }): Record<ImageKind, string> {
  const baseline = JSON.stringify([p.prompt, p.negativePrompt, seed, p.steps, p.omega, p.scheduler, p.width, p.height, versions.eta]);
  return { baseline, npo: JSON.stringify([baseline, p.alpha, p.beta, versions.delta]) };
}

/**
 * The image to draw for `kind`: the current one, or while a slider is dragged (or until the full-step image of its new
 * value arrives) the reduced-step one made for exactly the current settings; `dragSteps` says which it is.
 */
export function shownImage(s: Pick<PlaygroundState, 'params' | 'images' | 'dragPreview' | 'loraVersions'>, kind: ImageKind): { image?: ShownImage; dragSteps?: number } {
  const key = imageKeys(s.params, s.params.seed, s.loraVersions)[kind];
  const drag = s.dragPreview?.images[kind];
  if (s.images[kind]?.key !== key && drag?.key === key) return { image: drag, dragSteps: s.dragPreview!.steps };
  return { image: s.images[kind] };
}

let ready = false;

export const usePlayground = create<PlaygroundState>()((set, get) => ({
  params: initialParams,
  status: 'loading',
  progress: { step: 0, total: 0 },
  images: {},
  previews: {},
  stepPreviews: true,
  loraVersions: { eta: 0, delta: 0 },
  loraNames: {},
  view: 'side-by-side',
  wipe: 0.5,
  actualSize: false,
  setParam: (key, value) => set((state) => ({ params: { ...state.params, [key]: value } })),
  setParams: (params) => set((state) => ({ params: { ...state.params, ...params } })),
  restore(params, images, sameWeights) {
    const keys = imageKeys(params, params.seed, get().loraVersions);
    // Images made with other η/δ than the current ones keep a key no generation matches, so Generate recomputes them.
    const key = (kind: ImageKind) => (sameWeights ? keys[kind] : `restored:${keys[kind]}`);
    // A generation still running was for other settings: it is cancelled, and its late images are not shown over these.
    get().cancel();
    set({
      params,
      images: { baseline: { ...images.baseline, key: key('baseline'), prompt: params.prompt }, npo: { ...images.npo, key: key('npo'), prompt: params.prompt } },
      previews: {},
      lastSeed: params.seed,
      ...(get().status === 'generating' ? { status: 'ready' as const, running: undefined } : {}),
    });
  },
  setView: (view) => set({ view }),
  setWipe: (position) => set({ wipe: Math.min(1, Math.max(0, position)) }),
  toggleActualSize: () => set((s) => ({ actualSize: !s.actualSize })),
  setNotice: (notice) => set({ notice }),
  setStepPreviews: (on) => set({ stepPreviews: on, previews: {} }),
  setEta: (on, regenerate = true) => switchEta(on, regenerate),

  generate() {
    const { params, images, status, running, loraVersions } = get();
    if (!ready || status === 'loading' || status === 'failed') return;
    // Seed −1 draws a fresh seed here, so it is shown and the result can be reproduced.
    const seed = params.seed === -1 ? crypto.getRandomValues(new Uint32Array(1))[0] : params.seed;
    const keys = imageKeys(params, seed, loraVersions);
    const stale = (['baseline', 'npo'] as const).filter((kind) => images[kind]?.key !== keys[kind]);
    const alreadyRunning = running && stale.every((k) => running.images.includes(k)) && stale.every((k) => running.keys[k] === keys[k]);
    if (stale.length === 0 || alreadyRunning) return;
    const id = nextRequestId();
    set({ status: 'generating', running: { id, images: stale, keys, params: { ...params, seed } }, progress: { step: 0, total: params.steps }, previews: {}, error: undefined });
    sendToWorker({ type: 'generate', id, params: { ...params, seed }, images: stale, previews: get().stepPreviews });
  },

  cancel() {
    const { running } = get();
    if (running) sendToWorker({ type: 'cancel', id: running.id });
  },
}));

function handleWorkerEvent(event: WorkerEvent) {
  const set = usePlayground.setState;
  const { running } = usePlayground.getState();
  const current = 'id' in event && event.id !== undefined ? event.id === running?.id : true;
  switch (event.type) {
    case 'loading':
      return set({ loading: { message: event.message, loaded: event.loaded, total: event.total } });
    case 'ready': {
      // Ready again without a new model (a restarted worker, worker-client.ts): the person's settings stay, and the
      // worker gets the page's η again from worker-client. A new model starts from its own η and δ.
      const fresh = !ready;
      set({
        status: 'ready', backend: event.backend, adapter: event.adapter, backendReason: event.reason, model: event.model, notice: event.notice,
        ...(fresh ? { params: { ...event.model.defaults, ...urlParams }, loraNames: {} } : {}),
      });
      ready = true;
      syncUrl(usePlayground.getState(), { ...usePlayground.getState(), params: initialParams });
      const wantEta = urlEta ?? opensWithEta(event.model);
      if (fresh && event.model.hasEta && !wantEta) {
        // The first images wait for η to be off, so the page never shows (or keeps in its history) the other comparison.
        set({ status: 'loading', loading: { message: 'turning η off (base vs base+NPO)', loaded: 1, total: 1 } });
        return void switchEta(false, false).then(() => {
          set({ status: 'ready', loading: undefined });
          usePlayground.getState().generate();
        });
      }
      return usePlayground.getState().generate();
    }
    case 'progress':
      return current ? set({ progress: { step: event.step, total: event.total } }) : undefined;
    case 'preview':
      if (!current || !running) return;
      return set((s) => ({ previews: { ...s.previews, [event.kind]: { key: `${running.keys[event.kind]}:preview`, rgba: event.rgba, width: event.width, height: event.height, seed: 0, step: event.step } } }));
    case 'image':
      if (!current || !running) return;
      return set((s) => ({
        images: { ...s.images, [event.kind]: { key: running.keys[event.kind], rgba: event.rgba, width: event.width, height: event.height, seed: event.seed, prompt: running.params.prompt } },
        previews: { ...s.previews, [event.kind]: undefined },
      }));
    case 'done': {
      if (!current || !running) return;
      set({ status: 'ready', running: undefined, previews: {}, lastSeed: event.seed, lastMilliseconds: event.milliseconds });
      const { images } = usePlayground.getState();
      if (images.baseline?.key === running.keys.baseline && images.npo?.key === running.keys.npo) {
        const done: Generated = { params: running.params, images: { baseline: images.baseline, npo: images.npo } };
        generatedListeners.forEach((listener) => listener(done));
      }
      return;
    }
    case 'cancelled':
      return current ? set({ status: 'ready', running: undefined, previews: {} }) : undefined;
    case 'cache-cleared':
      return set({ cacheCleared: { files: event.files, bytes: event.bytes } });
    case 'lora-used': {
      set((s) => ({ loraVersions: { ...s.loraVersions, [event.role]: s.loraVersions[event.role] + 1 }, loraNames: { ...s.loraNames, [event.role]: event.name } }));
      const waiting = etaSwitches.get(event.id);
      etaSwitches.delete(event.id);
      waiting?.resolve(true);
      return waiting?.regenerate === false ? undefined : usePlayground.getState().generate();
    }
    case 'error':
      if (event.id !== undefined && etaSwitches.has(event.id)) {
        etaSwitches.get(event.id)!.resolve(false);
        etaSwitches.delete(event.id);
        return set({ error: event.message });
      }
      if (event.fatal) return set({ status: 'failed', error: event.message, running: undefined });
      // An error without an id (an uncaptured GPU error, say) is shown but does not end the running generation.
      if (event.id === undefined) return set({ error: event.message });
      return current ? set({ status: 'ready', error: event.message, running: undefined, previews: {} }) : undefined;
  }
}

/** Settings given in the page URL (`?prompt=…&seed=7&steps=2&omega=3&alpha=0.5&beta=1&scheduler=euler&eta=off`) override the model's defaults. */
let urlParams: Partial<GenerateParams> = {};
let urlEta: boolean | undefined;

/** η switches the worker has not answered yet, by request id. */
const etaSwitches = new Map<number, { resolve: (used: boolean) => void; regenerate: boolean }>();

function switchEta(on: boolean, regenerate: boolean): Promise<boolean> {
  const id = nextRequestId();
  const used = new Promise<boolean>((resolve) => etaSwitches.set(id, { resolve, regenerate }));
  sendToWorker({ type: 'use-lora', id, role: 'eta', lora: on ? null : 'none', name: on ? MODEL_LORA_NAMES.eta : NO_ETA });
  return used;
}

const generatedListeners = new Set<(generated: Generated) => void>();
/** Called after each generation whose two images are both current (the history keeps them). */
export function onGenerated(listener: (generated: Generated) => void): void {
  generatedListeners.add(listener);
}

/** Keeps the URL equal to the settings once the model's defaults are known (before that it holds the link's own). */
function syncUrl(state: PlaygroundState, previous: PlaygroundState) {
  const same = state.params === previous.params && state.loraNames === previous.loraNames && state.model === previous.model && state.stepPreviews === previous.stepPreviews;
  if (!ready || same) return;
  const query = new URLSearchParams(queryWithParams(location.search, state.params, etaSetting(state)));
  if (state.stepPreviews) query.delete('previews');
  else query.set('previews', 'off');
  const search = `?${query.toString()}`;
  if (search !== location.search) history.replaceState(history.state, '', `${location.pathname}${search}${location.hash}`);
}

let backendPreference: 'auto' | 'webgpu' | 'wasm' = 'auto';

/** Replaces the model by a prepared directory chosen from disk; the page waits for the worker's 'ready' again. */
export function loadLocalModel(files: File[]) {
  ready = false;
  usePlayground.setState({ status: 'loading', images: {}, previews: {}, running: undefined, error: undefined, loading: { message: 'reading the chosen folder', loaded: 0, total: 1 } });
  sendToWorker({ type: 'load-files', files, backend: backendPreference });
}

export const clearModelCache = () => sendToWorker({ type: 'clear-cache' });

/** Starts the worker and loads the model named in the URL (`?model=`, `?backend=webgpu|wasm`). */
export function startPlayground(search = location.search) {
  const query = new URLSearchParams(search);
  const backend = query.get('backend');
  backendPreference = backend === 'webgpu' || backend === 'wasm' ? backend : 'auto';
  urlParams = paramsFromQuery(query);
  urlEta = etaFromQuery(query);
  usePlayground.setState({ stepPreviews: query.get('previews') !== 'off' });
  onWorkerEvent(handleWorkerEvent);
  usePlayground.subscribe(syncUrl);
  const prepared = query.get('prepared'); // a model prepared in this browser (src/app/PreparePanel.tsx)
  if (prepared) return sendToWorker({ type: 'load-prepared', modelId: prepared, backend: backendPreference });
  sendToWorker({
    type: 'init',
    modelUrl: query.get('model') ?? new URL(`${import.meta.env.BASE_URL}models/`, location.href).href,
    backend: backend === 'webgpu' || backend === 'wasm' ? backend : 'auto',
  });
}

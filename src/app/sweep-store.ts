// The α×β sweep (paper Figure 10) on the page: one NPO image per cell for the current prompt and seed, generated one
// after another by the worker (a new generation request aborts the previous one, so cells go strictly in turn),
// streamed in as they finish, scored by the embedded world's reward, cancellable at any time. The baseline (plain
// CFG, which no α or β changes) is generated once, at the current ω.
import { create } from 'zustand';
import type { GenerateParams, ImageKind, WorkerEvent } from '../worker/protocol.ts';
import { parseAxisValues, sweepCells, type SweepAxis } from '../share/sweep.ts';
import { scoreRgba, type PageScore } from '../share/score.ts';
import { nextRequestId, onWorkerEvent, sendToWorker } from './worker-client.ts';
import { usePlayground } from './store.ts';
import type { RgbaImage } from './PixelCanvas.tsx';

export interface SweepCell { row: number; column: number; params: GenerateParams; image?: RgbaImage; score?: PageScore }

export interface SweepState {
  rowAxis: SweepAxis;
  columnAxis: SweepAxis;
  rowText: string;
  columnText: string;
  status: 'idle' | 'running';
  rows: number[];
  columns: number[];
  cells: SweepCell[];
  baseline?: { image: RgbaImage; score: PageScore; omega: number };
  message?: string;
  error?: string;
  set(patch: Partial<Pick<SweepState, 'rowAxis' | 'columnAxis' | 'rowText' | 'columnText'>>): void;
  run(): Promise<void>;
  cancel(): void;
}

/** The request in flight and how it ends. */
let pending: { id: number; resolve(image?: Map<ImageKind, RgbaImage>): void; reject(error: Error): void; images: Map<ImageKind, RgbaImage> } | undefined;
let cancelled = false;

function request(params: GenerateParams, images: ImageKind[]): Promise<Map<ImageKind, RgbaImage>> {
  return new Promise((resolve, reject) => {
    if (cancelled) return reject(new Error('sweep cancelled'));
    const id = nextRequestId();
    pending = { id, resolve: resolve as (m?: Map<ImageKind, RgbaImage>) => void, reject, images: new Map() };
    sendToWorker({ type: 'generate', id, params, images });
  });
}

onWorkerEvent((event: WorkerEvent) => {
  if (!pending || !('id' in event) || event.id !== pending.id) return;
  const p = pending;
  if (event.type === 'image') p.images.set(event.kind, { rgba: event.rgba, width: event.width, height: event.height });
  else if (event.type === 'done') (pending = undefined), p.resolve(p.images);
  else if (event.type === 'cancelled') (pending = undefined), p.reject(new Error(cancelled ? 'sweep cancelled' : 'sweep interrupted by another generation'));
  else if (event.type === 'error') (pending = undefined), p.reject(new Error(event.message));
});

export const useSweep = create<SweepState>()((set, get) => ({
  rowAxis: 'alpha',
  columnAxis: 'beta',
  rowText: '0, 0.5, 1',
  columnText: '0, 0.5, 1',
  status: 'idle',
  rows: [],
  columns: [],
  cells: [],
  set: (patch) => set(patch),

  async run() {
    const { rowAxis, columnAxis, rowText, columnText, status } = get();
    const page = usePlayground.getState();
    if (status === 'running' || page.status === 'loading' || page.status === 'failed') return;
    let rows: number[], columns: number[], specs;
    try {
      rows = parseAxisValues(rowText, rowAxis);
      columns = parseAxisValues(columnText, columnAxis);
      specs = sweepCells(rowAxis, rows, columnAxis, columns);
    } catch (error) {
      return set({ error: (error as Error).message });
    }
    // One seed for the whole grid, drawn here when the page asks for a random one.
    const seed = page.params.seed === -1 ? crypto.getRandomValues(new Uint32Array(1))[0] : page.params.seed;
    const base = { ...page.params, seed };
    const cells: SweepCell[] = specs.map((s) => ({ row: s.row, column: s.column, params: { ...base, ...s.values } }));
    cancelled = false;
    set({ status: 'running', rows, columns, cells, baseline: undefined, error: undefined, message: undefined });
    const embedded = (page.model?.kind ?? 'embedded') === 'embedded';
    const score = (image: RgbaImage): PageScore => (embedded ? scoreRgba(image.rgba, image.width, image.height, base.prompt)
      : { ok: false, reason: "the reward is the embedded world's; real models have no score here yet" });
    try {
      const baseline = (await request(base, ['baseline'])).get('baseline')!;
      set({ baseline: { image: baseline, score: score(baseline), omega: base.omega } });
      for (let i = 0; i < cells.length; i++) {
        const image = (await request(cells[i].params, ['npo'])).get('npo')!;
        set((s) => ({ cells: s.cells.map((c, k) => (k === i ? { ...c, image, score: score(image) } : c)) }));
      }
      set({ status: 'idle', message: `${cells.length} cells, seed ${seed}` });
    } catch (error) {
      set({ status: 'idle', message: (error as Error).message });
    }
  },

  cancel() {
    if (get().status !== 'running') return;
    cancelled = true;
    if (pending) sendToWorker({ type: 'cancel', id: pending.id });
  },
}));

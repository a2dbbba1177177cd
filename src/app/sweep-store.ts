// The α×β sweep (paper Figure 10) on the page: one NPO image per cell for the current prompt and seed, generated one
// after another by the worker (a new generation request aborts the previous one, so cells go strictly in turn),
// streamed in as they finish, scored by the embedded world's reward, cancellable at any time. The baseline (plain
// CFG, which no α or β changes) is generated once, at the current ω. With η off, α has nothing to scale (θ_neg =
// θ + β·δ): until the person chooses axes, the rows are then ω instead of α, so no row repeats another.
import { create } from 'zustand';
import type { GenerateParams } from '../worker/protocol.ts';
import { parseAxisValues, sweepCells, type SweepAxis } from '../share/sweep.ts';
import { scoreRgba, type PageScore } from '../share/score.ts';
import { createRequester } from './image-requests.ts';
import { etaOn, usePlayground } from './store.ts';
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
  /** The person changed an axis or its values: the rows no longer follow the η switch. */
  chosen: boolean;
  set(patch: Partial<Pick<SweepState, 'rowAxis' | 'columnAxis' | 'rowText' | 'columnText'>>): void;
  run(): Promise<void>;
  cancel(): void;
}

const requester = createRequester('sweep');
const request = requester.request;

/** The rows the sweep offers with η on (α) and off (ω, around the usual guidance). */
const DEFAULT_ROWS = { on: { rowAxis: 'alpha', rowText: '0, 0.5, 1' }, off: { rowAxis: 'omega', rowText: '2, 4, 6' } } as const;

export const useSweep = create<SweepState>()((set, get) => ({
  ...DEFAULT_ROWS.on,
  columnAxis: 'beta',
  columnText: '0, 0.5, 1',
  chosen: false,
  status: 'idle',
  rows: [],
  columns: [],
  cells: [],
  set: (patch) => set({ ...patch, chosen: true }),

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
    requester.reset();
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
    requester.cancel();
  },
}));

usePlayground.subscribe((page, previous) => {
  if (etaOn(page) !== etaOn(previous) && !useSweep.getState().chosen) useSweep.setState(DEFAULT_ROWS[etaOn(page) ? 'on' : 'off']);
});

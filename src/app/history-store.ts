// The history strip's state: every generation whose two images are current is kept in IndexedDB (src/share/history.ts),
// newest first, bounded in count and bytes, clearable, starred entries kept. Clicking an entry restores its settings
// and images. When storage refuses an entry (quota full, IndexedDB unavailable) it is kept in memory for the session
// instead, marked unsaved, and the strip says why: nothing generated is lost while the page is open.
import { create } from 'zustand';
import { evictions, HISTORY_LIMIT, HISTORY_MAX_BYTES, makeRecord, openHistory, type HistoryDb, type HistoryEntry, type HistoryImages } from '../share/history.ts';
import { etaOn, hasEtaSwitch, isModelLora, onGenerated, usePlayground } from './store.ts';

/** A strip entry; `unsaved` ones live only in this page (storage refused them) and carry their images. */
export type StripEntry = HistoryEntry & { unsaved?: HistoryImages };

export interface HistoryState {
  entries: StripEntry[];
  error?: string;
  restore(entry: StripEntry): Promise<void>;
  star(entry: StripEntry): Promise<void>;
  clear(): Promise<void>;
}

let db: Promise<HistoryDb> | undefined;
let unsaved: StripEntry[] = [];
let nextUnsavedId = -1;

const describe = (error: unknown) => (error as Error)?.message ?? String(error);

async function withDb<T>(run: (db: HistoryDb) => Promise<T>): Promise<T | undefined> {
  try {
    db ??= openHistory();
    return await run(await db);
  } catch (error) {
    useHistory.setState({ error: `history unavailable: ${describe(error)}` });
    return undefined;
  }
}

const newestFirst = (a: HistoryEntry, b: HistoryEntry) => b.time - a.time || b.id - a.id;

async function reload() {
  const saved = (await withDb((d) => d.list())) ?? [];
  useHistory.setState({ entries: [...saved, ...unsaved].sort(newestFirst) });
}

export const useHistory = create<HistoryState>()(() => ({
  entries: [],
  async restore(entry) {
    const images = entry.unsaved ?? (await withDb((d) => d.images(entry)));
    if (!images) return;
    // The entry's η switch first (its images were made with it), without a generation of the settings being left.
    const entryEta = etaOn({ loraNames: entry.loras });
    if (hasEtaSwitch(usePlayground.getState()) && entryEta !== etaOn(usePlayground.getState())) await usePlayground.getState().setEta(entryEta, false);
    const page = usePlayground.getState();
    const sameWeights = entry.model === page.model?.name && (['eta', 'delta'] as const).every((role) => sameLora(entry.loras[role], page.loraNames[role], role));
    const image = (rgba: Uint8ClampedArray) => ({ rgba, width: entry.width, height: entry.height, seed: entry.params.seed });
    page.restore(entry.params, { baseline: image(images.baseline), npo: image(images.npo) }, sameWeights);
  },
  async star(entry) {
    if (entry.unsaved) unsaved = unsaved.map((e) => (e.id === entry.id ? { ...e, starred: !e.starred } : e));
    else await withDb((d) => d.setStarred(entry.id, !entry.starred));
    await reload();
  },
  async clear() {
    unsaved = unsaved.filter((e) => e.starred);
    await withDb((d) => d.clear());
    await reload();
  },
}));

/** Whether two LoRA names are the same η or δ: equal, or both the model's own (named or not). */
const sameLora = (a: string | undefined, b: string | undefined, role: 'eta' | 'delta') => a === b || (isModelLora(a, role) && isModelLora(b, role));

/** Keeps an entry storage refused in memory, under the same bounds as the stored ones. */
function keepUnsaved(entry: StripEntry, why: unknown) {
  unsaved = [entry, ...unsaved];
  const drop = new Set(evictions(unsaved, HISTORY_LIMIT, HISTORY_MAX_BYTES));
  unsaved = unsaved.filter((e) => !drop.has(e.id));
  useHistory.setState({ error: `history not saved (${describe(why)}); this page keeps ${unsaved.length} unsaved entr${unsaved.length === 1 ? 'y' : 'ies'} until it closes` });
}

/** Loads the stored history and keeps every new generation. */
export function startHistory() {
  void reload();
  onGenerated(async ({ params, images }) => {
    const page = usePlayground.getState();
    const fresh = {
      time: Date.now(), params, model: page.model?.name ?? '', loras: { ...page.loraNames },
      width: images.npo.width, height: images.npo.height, baseline: images.baseline.rgba, npo: images.npo.rgba, starred: false,
    };
    const record = await makeRecord(fresh);
    try {
      db ??= openHistory();
      await (await db).add(record);
      if (useHistory.getState().error?.startsWith('history not saved') && unsaved.length === 0) useHistory.setState({ error: undefined });
    } catch (error) {
      keepUnsaved({ ...record.entry, id: nextUnsavedId--, unsaved: { baseline: fresh.baseline, npo: fresh.npo } }, error);
    }
    await reload();
  });
}

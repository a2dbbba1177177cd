// The history strip's state: every generation whose two images are current is kept in IndexedDB (src/share/history.ts),
// newest first, bounded, clearable, starred entries kept. Clicking an entry restores its settings and images.
import { create } from 'zustand';
import { openHistory, type HistoryDb, type HistoryEntry } from '../share/history.ts';
import { onGenerated, usePlayground } from './store.ts';

export interface HistoryState {
  entries: HistoryEntry[];
  error?: string;
  restore(entry: HistoryEntry): void;
  star(entry: HistoryEntry): Promise<void>;
  clear(): Promise<void>;
}

let db: Promise<HistoryDb> | undefined;

async function withDb<T>(run: (db: HistoryDb) => Promise<T>): Promise<T | undefined> {
  try {
    db ??= openHistory();
    return await run(await db);
  } catch (error) {
    useHistory.setState({ error: `history unavailable: ${(error as Error).message}` });
    return undefined;
  }
}

const reload = () => withDb(async (d) => useHistory.setState({ entries: await d.list() }));

export const useHistory = create<HistoryState>()(() => ({
  entries: [],
  restore(entry) {
    const page = usePlayground.getState();
    const sameWeights = entry.model === page.model?.name && entry.loras.eta === page.loraNames.eta && entry.loras.delta === page.loraNames.delta;
    const image = (rgba: Uint8ClampedArray) => ({ rgba, width: entry.width, height: entry.height, seed: entry.params.seed });
    page.restore(entry.params, { baseline: image(entry.baseline), npo: image(entry.npo) }, sameWeights);
  },
  star: async (entry) => void (await withDb((d) => d.setStarred(entry.id, !entry.starred)), await reload()),
  clear: async () => void (await withDb((d) => d.clear()), await reload()),
}));

/** Loads the stored history and keeps every new generation. */
export function startHistory() {
  void reload();
  onGenerated(({ params, images }) => {
    const page = usePlayground.getState();
    void withDb(async (d) => {
      await d.add({
        time: Date.now(), params, model: page.model?.name ?? '', loras: { ...page.loraNames },
        width: images.npo.width, height: images.npo.height, baseline: images.baseline.rgba, npo: images.npo.rgba, starred: false,
      });
      await reload();
    });
  });
}

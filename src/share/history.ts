// Generation history kept in IndexedDB (survives a reload): each entry holds the settings, the concrete seed and both
// images. Bounded: past `limit` unstarred entries the oldest unstarred go; starred entries stay until unstarred.
// Clearing removes the unstarred ones.
import type { GenerateParams } from '../worker/protocol.ts';

export interface HistoryEntry {
  id: number;
  time: number;
  params: GenerateParams;
  model: string;
  /** Which η and δ made the images (undefined: the model's own). */
  loras: { eta?: string; delta?: string };
  width: number;
  height: number;
  baseline: Uint8ClampedArray;
  npo: Uint8ClampedArray;
  starred: boolean;
}

export const HISTORY_LIMIT = 40;

/** Ids to delete so at most `limit` unstarred entries remain (the oldest go first). */
export function evictions(entries: readonly Pick<HistoryEntry, 'id' | 'time' | 'starred'>[], limit: number): number[] {
  const unstarred = entries.filter((e) => !e.starred).sort((a, b) => b.time - a.time || b.id - a.id);
  return unstarred.slice(limit).map((e) => e.id);
}

const STORE = 'entries';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export interface HistoryDb {
  /** Newest first. */
  list(): Promise<HistoryEntry[]>;
  add(entry: Omit<HistoryEntry, 'id'>): Promise<number>;
  setStarred(id: number, starred: boolean): Promise<void>;
  clear(): Promise<void>;
}

export async function openHistory(name = 'npo-playground-history', limit = HISTORY_LIMIT): Promise<HistoryDb> {
  const open = indexedDB.open(name, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
  const db = await request(open);
  const store = (mode: IDBTransactionMode) => db.transaction(STORE, mode).objectStore(STORE);
  const list = async () => ((await request(store('readonly').getAll())) as HistoryEntry[]).sort((a, b) => b.time - a.time || b.id - a.id);
  const remove = async (ids: number[]) => {
    const s = store('readwrite');
    await Promise.all(ids.map((id) => request(s.delete(id))));
  };
  return {
    list,
    async add(entry) {
      const id = (await request(store('readwrite').add(entry))) as number;
      await remove(evictions(await list(), limit));
      return id;
    },
    async setStarred(id, starred) {
      const s = store('readwrite');
      const entry = (await request(s.get(id))) as HistoryEntry | undefined;
      if (entry) await request(s.put({ ...entry, starred }));
    },
    async clear() {
      await remove((await list()).filter((e) => !e.starred).map((e) => e.id));
    },
  };
}

// Generation history kept in IndexedDB (survives a reload): each entry holds the settings, the concrete seed and a
// small thumbnail of both images for the strip ('entries' store); both full images, losslessly compressed (deflate of
// the RGBA bytes: a 512² image is 1 MiB raw), sit in a second store ('images') read only when an entry is restored, so
// drawing the strip never reads megabytes. Bounded twice: at most `limit` unstarred entries and at most `maxBytes`
// stored in all, the oldest unstarred going first; starred entries stay until unstarred, the newest entry always
// stays. A full browser quota (QuotaExceededError) evicts the oldest unstarred entries until the new one fits, else
// says so (HistoryFullError). Clearing removes the unstarred ones. Version-1 entries (raw RGBA inline) are still read.
import type { GenerateParams } from '../worker/protocol.ts';

export interface HistoryImages { baseline: Uint8ClampedArray; npo: Uint8ClampedArray }
/** Both full images as stored: deflated RGBA ('deflate'), or raw RGBA in version-1 entries ('rgba'). */
export interface StoredImages { encoding: 'deflate' | 'rgba'; baseline: Uint8Array; npo: Uint8Array }

export interface HistoryEntry {
  id: number;
  time: number;
  params: GenerateParams;
  model: string;
  /** Which η and δ made the images (undefined: the model's own). */
  loras: { eta?: string; delta?: string };
  width: number;
  height: number;
  /** Both images at most THUMB_SIDE pixels a side (nearest neighbour), raw RGBA: what the strip draws. */
  thumb: { width: number; height: number } & HistoryImages;
  /** Version-1 entries only: both images inline as raw RGBA (newer entries keep theirs in the 'images' store). */
  inline?: StoredImages;
  /** Bytes the entry's images and thumbnail take in storage (what the byte bound counts). */
  bytes: number;
  starred: boolean;
}

/** What a new entry is made from: the settings and both full images. */
export type NewHistoryEntry = Omit<HistoryEntry, 'id' | 'thumb' | 'inline' | 'bytes'> & HistoryImages;
/** A made entry (makeRecord) and its images, ready to store. */
export interface HistoryRecord { entry: Omit<HistoryEntry, 'id'>; images: StoredImages }

export const HISTORY_LIMIT = 40;
/** 64 MiB: about 45 generations at 512² (deflate keeps roughly 70 % of a generated image), hundreds of small ones. */
export const HISTORY_MAX_BYTES = 64 * 2 ** 20;
export const THUMB_SIDE = 64;

export class HistoryFullError extends Error {
  constructor(cause: unknown) {
    super(`browser storage is full (${(cause as Error)?.name ?? 'QuotaExceededError'}) and no unstarred entry is left to make room: unstar or clear entries, or free site storage`);
    this.name = 'HistoryFullError';
  }
}

type Bounded = Pick<HistoryEntry, 'id' | 'time' | 'starred'> & { bytes?: number };

/**
 * Ids to delete so at most `limit` unstarred entries remain and all entries together take at most `maxBytes` (the
 * oldest unstarred go first; starred entries and the newest entry are never chosen).
 */
export function evictions(entries: readonly Bounded[], limit: number, maxBytes = Infinity): number[] {
  const newest = [...entries].sort(newestFirst)[0];
  let total = entries.filter((e) => e.starred || e === newest).reduce((sum, e) => sum + (e.bytes ?? 0), 0);
  const evicted: number[] = [];
  let kept = newest && !newest.starred ? 1 : 0;
  for (const e of entries.filter((e) => !e.starred && e !== newest).sort(newestFirst)) {
    if (kept < limit && total + (e.bytes ?? 0) <= maxBytes) (kept++, total += e.bytes ?? 0);
    else evicted.push(e.id);
  }
  return evicted;
}

const newestFirst = (a: Bounded, b: Bounded) => b.time - a.time || b.id - a.id;

/** A nearest-neighbour copy of an RGBA image at most `side` pixels on its longer side (a smaller image is copied). */
export function thumbnail(rgba: Uint8ClampedArray, width: number, height: number, side = THUMB_SIDE): { width: number; height: number; rgba: Uint8ClampedArray } {
  if (rgba.length !== width * height * 4) throw new RangeError(`thumbnail: expected ${width}×${height}×4 bytes, got ${rgba.length}`);
  const scale = Math.min(1, side / Math.max(width, height));
  const [w, h] = [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / h));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(width - 1, Math.floor(((x + 0.5) * width) / w));
      out.set(rgba.subarray((sy * width + sx) * 4, (sy * width + sx) * 4 + 4), (y * w + x) * 4);
    }
  }
  return { width: w, height: h, rgba: out };
}

async function transform(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Response(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

/** The stored form of a new entry: thumbnails and deflated images, with its byte count. */
export async function makeRecord(entry: NewHistoryEntry): Promise<HistoryRecord> {
  const { baseline, npo, ...rest } = entry;
  const [b, n] = [thumbnail(baseline, entry.width, entry.height), thumbnail(npo, entry.width, entry.height)];
  const deflate = (rgba: Uint8ClampedArray) => transform(new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength), new CompressionStream('deflate'));
  const images = { encoding: 'deflate' as const, baseline: await deflate(baseline), npo: await deflate(npo) };
  const bytes = images.baseline.length + images.npo.length + b.rgba.length + n.rgba.length;
  return { entry: { ...rest, thumb: { width: b.width, height: b.height, baseline: b.rgba, npo: n.rgba }, bytes }, images };
}

/** Both full images of an entry, checked against its size (a damaged record is refused, not drawn). */
export async function unpackImages(stored: StoredImages, width: number, height: number): Promise<HistoryImages> {
  const inflate = async (bytes: Uint8Array) => {
    const raw = stored.encoding === 'deflate' ? await transform(bytes, new DecompressionStream('deflate')) : bytes;
    if (raw.length !== width * height * 4) throw new RangeError(`history entry holds ${raw.length} bytes for a ${width}×${height} image`);
    return new Uint8ClampedArray(raw.buffer, raw.byteOffset, raw.length);
  };
  return { baseline: await inflate(stored.baseline), npo: await inflate(stored.npo) };
}

/** An entry as read from the store; version-1 records (raw `baseline`/`npo` inline, no thumbnail) get the new shape. */
function upgrade(record: HistoryEntry & Partial<HistoryImages>): HistoryEntry {
  if (record.thumb) return record;
  const { baseline, npo, ...rest } = record as HistoryEntry & HistoryImages;
  const [b, n] = [thumbnail(baseline, rest.width, rest.height), thumbnail(npo, rest.width, rest.height)];
  const u8 = (a: Uint8ClampedArray) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return { ...rest, thumb: { width: b.width, height: b.height, baseline: b.rgba, npo: n.rgba }, inline: { encoding: 'rgba', baseline: u8(baseline), npo: u8(npo) }, bytes: baseline.length + npo.length };
}

const STORE = 'entries';
const IMAGES = 'images';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** A transaction's end: quota errors surface here (the commit aborts), not on the request. */
function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
  });
}

const isQuotaError = (error: unknown) => (error as Error)?.name === 'QuotaExceededError';

export interface HistoryDb {
  /** Newest first. */
  list(): Promise<HistoryEntry[]>;
  /** Stores a made record (makeRecord); throws HistoryFullError when the quota leaves no room even after evicting. */
  add(record: HistoryRecord): Promise<number>;
  /** Both full images of an entry. */
  images(entry: HistoryEntry): Promise<HistoryImages>;
  setStarred(id: number, starred: boolean): Promise<void>;
  clear(): Promise<void>;
}

export async function openHistory(name = 'npo-playground-history', limit = HISTORY_LIMIT, maxBytes = HISTORY_MAX_BYTES): Promise<HistoryDb> {
  const open = indexedDB.open(name, 2);
  open.onupgradeneeded = (event) => {
    if (event.oldVersion < 1) open.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
    if (event.oldVersion < 2) open.result.createObjectStore(IMAGES);
  };
  const db = await request(open);
  const list = async () => {
    const tx = db.transaction(STORE, 'readonly');
    return ((await request(tx.objectStore(STORE).getAll())) as HistoryEntry[]).map(upgrade).sort(newestFirst);
  };
  const remove = async (ids: number[]) => {
    if (ids.length === 0) return;
    const tx = db.transaction([STORE, IMAGES], 'readwrite');
    ids.forEach((id) => (tx.objectStore(STORE).delete(id), tx.objectStore(IMAGES).delete(id)));
    await committed(tx);
  };
  // One transaction for the entry and its images: both are stored or neither.
  const put = async ({ entry, images }: HistoryRecord) => {
    const tx = db.transaction([STORE, IMAGES], 'readwrite');
    const id = (await request(tx.objectStore(STORE).add(entry))) as number;
    tx.objectStore(IMAGES).put(images, id);
    await committed(tx);
    return id;
  };
  return {
    list,
    async add(record) {
      for (;;) {
        try {
          const id = await put(record);
          await remove(evictions(await list(), limit, maxBytes));
          return id;
        } catch (error) {
          if (!isQuotaError(error)) throw error;
          const oldest = (await list()).filter((e) => !e.starred).at(-1);
          if (!oldest) throw new HistoryFullError(error);
          await remove([oldest.id]);
        }
      }
    },
    async images(entry) {
      const stored = entry.inline ?? ((await request(db.transaction(IMAGES, 'readonly').objectStore(IMAGES).get(entry.id))) as StoredImages | undefined);
      if (!stored) throw new Error(`the images of history entry ${entry.id} are missing`);
      return unpackImages(stored, entry.width, entry.height);
    },
    async setStarred(id, starred) {
      const tx = db.transaction(STORE, 'readwrite');
      const entry = (await request(tx.objectStore(STORE).get(id))) as HistoryEntry | undefined;
      if (entry) tx.objectStore(STORE).put({ ...entry, starred });
      await committed(tx);
    },
    async clear() {
      await remove((await list()).filter((e) => !e.starred).map((e) => e.id));
    },
  };
}

// A Hugging Face Hub repository folder as preparation input (io.ts InputFolder), read over HTTP the way the Hub
// serves files (huggingface.js fileDownloadInfo / downloadFile): `<hub>/<repo>/resolve/<revision>/<path>`, which
// redirects large (LFS) files to a CDN; sizes and published hashes come from the tree listing (hub-listing.ts).
// Preparation reads every network file front to back (prepare.ts), so a large file is one ranged GET from byte 0
// whose bytes feed the preparation as they arrive and pass an incremental SHA-256 compared with the Hub's `lfs.oid`
// at the end; nothing is stored on the way (no second copy on disk). A connection that drops is resumed with
// `Range: bytes=<next>-` (a few tries), and every response is checked: status, Content-Range against the listed
// size, ETag unchanged between resumes, no byte past the announced end. Small files are fetched whole, checked
// (SHA-256, or the git blob SHA-1 the listing names) and kept in memory. A read out of order (rare: a Constant's
// tensor before the weights) is a separate range request; the file is then reported as not fully hash-checked.
import { createSha256, type Sha256 } from '../util/sha256.ts';
import { HubError, nextPageUrl, parseContentRange, parseTreeListing, type HubFile } from './hub-listing.ts';
import type { InputFolder } from './io.ts';

export const DEFAULT_HUB = 'https://huggingface.co';

export interface HubLocation {
  /** The Hub's origin (`?hub=`), e.g. https://huggingface.co. */
  endpoint: string;
  repo: string;
  revision: string;
  /** A folder inside the repository ('' for its top). */
  folder: string;
}

export interface HubFolderOptions {
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Network bytes received (every response body byte, resumes included). */
  onBytes?: (bytes: number) => void;
  /** Tries per file position before a broken download is an error (default 5), and the first wait between them. */
  tries?: number;
  retryDelayMs?: number;
  /** Files up to this size are fetched whole and kept (default 64 MiB); larger ones stream front to back. */
  wholeFileBytes?: number;
}

export interface HubFolder extends InputFolder {
  /** Files read so far: whether each passed the Hub's hash (false: read out of order, or no hash published). */
  checked(): { path: string; hashChecked: boolean }[];
}

/** Configs, tokenizers, graphs with external weights and LoRAs are fetched whole and kept. */
const WHOLE_FILE_BYTES = 64 << 20;
/** A read this far past the sequential position still continues the one download (the gap is read and hashed). */
const GAP_BYTES = 4 << 20;

/** `owner/name`: the repository ids the Hub accepts (letters, digits, `-`, `_`, `.`). */
export function checkRepoId(repo: string): string {
  if (!/^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/.test(repo) || repo.includes('..')) {
    throw new HubError(`"${repo}" is not a Hugging Face repository id (owner/name)`);
  }
  return repo;
}

const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

export function hubFolder(location: HubLocation, options: HubFolderOptions = {}): HubFolder {
  const { endpoint, repo, revision } = location;
  checkRepoId(repo);
  const fetchImpl = options.fetch ?? fetch;
  const base = endpoint.replace(/\/+$/, '');
  const prefix = location.folder ? `${location.folder.replace(/^\/+|\/+$/g, '')}/` : '';
  const full = (path: string) => `${prefix}${path}`;
  const name = (path: string) => `${repo}/${full(path)} (revision ${revision})`;
  const resolveUrl = (path: string) => `${base}/${repo}/resolve/${encodeURIComponent(revision)}/${encodePath(full(path))}`;
  let listing: Promise<Map<string, HubFile>> | undefined;
  const files = new Map<string, ReturnType<typeof fileReader>>();

  const listed = async (path: string) => {
    listing ??= listFolder(fetchImpl, base, location, options.signal);
    return (await listing).get(full(path));
  };

  return {
    label: `hub:${repo}@${revision}${prefix ? `/${prefix.slice(0, -1)}` : ''}`,
    name,
    size: async (path) => (await listed(path))?.size,
    async read(path, start, end) {
      const entry = await listed(path);
      if (!entry) throw new HubError(`${name(path)} is not in the repository's listing`);
      if (start < 0 || end > entry.size || start > end) throw new HubError(`${name(path)}: bytes ${start}..${end} lie outside its ${entry.size} bytes`);
      let reader = files.get(path);
      if (!reader) files.set(path, (reader = fileReader(entry, name(path), resolveUrl(path), fetchImpl, options)));
      return reader.read(start, end);
    },
    checked: () => [...files.entries()].map(([path, r]) => ({ path, hashChecked: r.hashChecked() })),
  };
}

/** Every file under the folder, from the tree listing (following its pages). */
async function listFolder(fetchImpl: typeof fetch, base: string, location: HubLocation, signal?: AbortSignal): Promise<Map<string, HubFile>> {
  const what = `${location.repo} (revision ${location.revision})`;
  let url: string | undefined = `${base}/api/models/${location.repo}/tree/${encodeURIComponent(location.revision)}/${encodePath(location.folder)}?recursive=true`;
  const files = new Map<string, HubFile>();
  for (let page = 0; url && page < 100; page++) {
    const response = await fetchOrFail(fetchImpl, url, {}, what, signal);
    if (!response.ok) throw await statusError(response, `${what}${location.folder ? `/${location.folder}` : ''}`);
    for (const f of parseTreeListing(await response.text(), what)) files.set(f.path, f);
    url = nextPageUrl(response.headers.get('link'));
    if (url && !url.startsWith(`${base}/`)) throw new HubError(`${what}: the listing's next page points to another origin (${url})`);
  }
  return files;
}

/** The reads of one file: whole and cached when small, else one resumable download front to back. */
function fileReader(entry: HubFile, what: string, resolveUrl: string, fetchImpl: typeof fetch, options: HubFolderOptions) {
  const tries = options.tries ?? 5;
  let direct: string | undefined; // the URL a redirect led to (a CDN): later requests skip the redirect
  let etag: string | undefined;
  let whole: Promise<Uint8Array> | undefined;
  let outOfOrder = false;
  let verified = false;
  const hash: Sha256 = createSha256();
  let position = 0; // bytes read and hashed, front to back
  let body: { pieces: AsyncGenerator<Uint8Array>; leftover?: Uint8Array } | undefined;

  /** A response for bytes [start, end) (end: the file's end when omitted), checked against the listing. */
  async function request(start: number, end?: number): Promise<Response> {
    const range = `bytes=${start}-${end === undefined ? '' : end - 1}`;
    for (const url of direct ? [direct, resolveUrl] : [resolveUrl]) {
      const response = await fetchOrFail(fetchImpl, url, { headers: { Range: range } }, what, options.signal);
      if (!response.ok && url === direct) {
        await response.body?.cancel().catch(() => undefined);
        direct = undefined; // a signed CDN URL that expired: ask the Hub again
        continue;
      }
      if (!response.ok) throw await statusError(response, what);
      checkRange(response, start, end);
      if (response.url && response.url !== resolveUrl) direct = response.url;
      return response;
    }
    throw new HubError(`${what}: no answer`);
  }

  function checkRange(response: Response, start: number, end?: number) {
    const tag = response.headers.get('etag') ?? undefined;
    if (etag && tag && tag !== etag) throw new HubError(`${what} changed on the Hub during the download (ETag ${etag} → ${tag}); start again`);
    etag ??= tag;
    const length = response.headers.get('content-length');
    const expected = (end ?? entry.size) - start;
    if (response.status === 206) {
      const range = parseContentRange(response.headers.get('content-range'));
      if (range?.total !== undefined && range.total !== entry.size) {
        throw new HubError(`${what} is ${range.total} bytes, but the Hub's listing announced ${entry.size} (${range.total > entry.size ? 'larger' : 'smaller'} than announced: a different file?)`);
      }
      if (range && range.first !== start) throw new HubError(`${what}: asked for bytes from ${start}, the server sent from ${range.first}`);
    } else if (start > 0) {
      throw new HubError(`${what}: the server ignored the byte range (HTTP ${response.status}); it must support range requests to resume`);
    }
    if (length !== null && /^\d+$/.test(length) && Number(length) > expected) {
      throw new HubError(`${what}: the server announces ${length} bytes where ${expected} remain (larger than announced: a different file?)`);
    }
  }

  /** Bytes of a response body, none past `limit` (more is an error: the file is larger than announced). */
  async function* bodyPieces(response: Response, limit: number): AsyncGenerator<Uint8Array> {
    const reader = (response.body ?? new Blob([]).stream()).getReader();
    let received = 0;
    try {
      for (;;) {
        const next = await reader.read();
        if (next.done) return;
        received += next.value.byteLength;
        if (received > limit) throw new HubError(`${what}: the server sent more than the ${entry.size} bytes announced (larger than announced: a different file?)`);
        options.onBytes?.(next.value.byteLength);
        yield next.value;
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  /**
   * Exactly `n` bytes from the download at `position`, resuming with a new range request when the connection
   * drops; `tries` failures in a row without a new byte make it an error.
   */
  async function take(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    let failures = 0;
    while (filled < n) {
      options.signal?.throwIfAborted();
      try {
        body ??= { pieces: bodyPieces(await request(position), entry.size - position) };
        let piece = body.leftover;
        body.leftover = undefined;
        if (!piece) {
          const next = await body.pieces.next();
          if (next.done) throw new HubError(`${what}: the response ended at byte ${position} of ${entry.size} (truncated)`);
          piece = next.value;
        }
        const used = Math.min(piece.byteLength, n - filled);
        out.set(piece.subarray(0, used), filled);
        if (used < piece.byteLength) body.leftover = piece.subarray(used);
        hash.update(piece.subarray(0, used));
        [filled, position, failures] = [filled + used, position + used, 0];
      } catch (error) {
        body = undefined;
        if (isAbort(error) || (error instanceof HubError && !/truncated/.test(error.message)) || ++failures >= tries) {
          if (error instanceof HubError || isAbort(error)) throw error;
          throw new HubError(`${what}: the download broke off at byte ${position} of ${entry.size} (${(error as Error).message}) after ${tries} tries`);
        }
        await delay((options.retryDelayMs ?? 500) * 2 ** (failures - 1), options.signal);
      }
    }
    if (position === entry.size) finish();
    return out;
  }

  function finish() {
    body = undefined;
    if (!entry.sha256) return;
    const hex = hash.hex();
    if (hex !== entry.sha256) throw new HubError(`${what}: SHA-256 ${hex.slice(0, 12)}… differs from the Hub's published ${entry.sha256.slice(0, 12)}… (a wrong or corrupted file)`);
    verified = true;
  }

  async function fetchWhole(): Promise<Uint8Array> {
    const bytes = await take(entry.size);
    if (!entry.sha256 && entry.gitSha1) {
      const hex = await gitBlobSha1(bytes);
      if (hex !== entry.gitSha1) throw new HubError(`${what}: git SHA-1 ${hex.slice(0, 12)}… differs from the Hub's ${entry.gitSha1.slice(0, 12)}… (a wrong or corrupted file)`);
      verified = true;
    }
    return bytes;
  }

  /** An out-of-order read: its own range request, resumed like the main download. */
  async function readApart(start: number, end: number): Promise<Uint8Array> {
    outOfOrder = true;
    const out = new Uint8Array(end - start);
    for (let filled = 0, failures = 0; filled < out.length;) {
      try {
        for await (const piece of bodyPieces(await request(start + filled, end), end - start - filled)) {
          out.set(piece, filled);
          filled += piece.byteLength;
        }
        if (filled < out.length) throw new Error('the response ended early');
      } catch (error) {
        if (isAbort(error) || error instanceof HubError || ++failures >= tries) throw error;
        await delay((options.retryDelayMs ?? 500) * 2 ** (failures - 1), options.signal);
      }
    }
    return out;
  }

  return {
    async read(start: number, end: number): Promise<Uint8Array> {
      // Files outside LFS are git files (small): fetched whole, so their git SHA-1 can be checked.
      if (entry.size <= (options.wholeFileBytes ?? WHOLE_FILE_BYTES) || !entry.sha256) return (await (whole ??= fetchWhole())).slice(start, end);
      if (start >= position && start - position <= GAP_BYTES) {
        if (start > position) await take(start - position); // a gap between tensors: read, hashed, dropped
        return take(end - start);
      }
      return readApart(start, end);
    },
    hashChecked: () => verified && !outOfOrder,
  };
}

async function fetchOrFail(fetchImpl: typeof fetch, url: string, init: RequestInit, what: string, signal?: AbortSignal): Promise<Response> {
  try {
    // no-store: the browser's HTTP cache would keep a second copy of every byte (and answers resumes itself).
    return await fetchImpl(url, { ...init, signal, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new Error(`could not reach the Hub for ${what}: ${(error as Error).message}`);
  }
}

/** A specific sentence for a failed Hub request (the Hub names the problem in X-Error-Code). */
async function statusError(response: Response, what: string): Promise<HubError> {
  await response.body?.cancel().catch(() => undefined);
  const code = response.headers.get('x-error-code');
  const status = `HTTP ${response.status}${code ? `, ${code}` : ''}`;
  if (response.status === 404 && code !== 'RepoNotFound' && code !== 'RevisionNotFound') return new HubError(`${what}: not found on the Hub (${status})`);
  if (response.status === 404 || response.status === 401) return new HubError(`${what}: no such repository or revision, or it is private or gated (${status}); check the id, or accept its licence on the Hub`);
  if (response.status === 403) return new HubError(`${what}: access refused (${status}): a gated model whose licence must be accepted on the Hub`);
  if (response.status === 416) return new HubError(`${what}: the server holds fewer bytes than the listing announced (${status})`);
  if (response.status === 429) return new HubError(`${what}: the Hub asks to slow down (${status}); try again in a minute`);
  return new HubError(`${what}: the Hub answered ${status} ${response.statusText}`);
}

/** The git blob SHA-1 of a file's content: SHA-1("blob <size>\0" + content), the name git and the Hub give it. */
async function gitBlobSha1(bytes: Uint8Array): Promise<string> {
  const head = new TextEncoder().encode(`blob ${bytes.byteLength}\0`);
  const all = new Uint8Array(head.byteLength + bytes.byteLength);
  all.set(head);
  all.set(bytes, head.byteLength);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', all));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const isAbort = (error: unknown) => (error as { name?: string })?.name === 'AbortError';

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

export { HubError };

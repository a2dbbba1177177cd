// What the Hugging Face Hub says about a repository's files, parsed as hostile input (a proxy, a mirror or a
// `?hub=` endpoint may send anything): the tree listing `GET <hub>/api/models/<repo>/tree/<revision>/<path>?recursive=true`
// (huggingface.js listFiles; an array of { type, path, size, oid, lfs?: { oid, size } }, where `oid` is the git blob
// SHA-1 and `lfs.oid` the SHA-256 of a large file's content) and the `Content-Range` header of a range response
// (RFC 9110 §14.4: `bytes <first>-<last>/<complete length>`). Every field is checked; anything else is an error.

export class HubError extends Error {
  override name = 'HubError';
}

export interface HubFile {
  /** Path inside the repository ('/'-separated, no '.' or '..' segment). */
  path: string;
  size: number;
  /** SHA-256 of the content for LFS files (the Hub's published hash of a large file). */
  sha256?: string;
  /** git blob SHA-1 of the content (what git and the Hub name a small file by). */
  gitSha1?: string;
}

/** Listings longer than this are refused (an SD repository has a few dozen files). */
export const MAX_LISTED_FILES = 100_000;

/** A value from hostile JSON, shown safely in a message (no deep stringify, no toString of an object). */
const shown = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : typeof v === 'number' || typeof v === 'boolean' || v === null ? String(v) : typeof v);
const isHex = (value: unknown, length: number): value is string => typeof value === 'string' && value.length === length && /^[0-9a-f]+$/.test(value);
const isSize = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** A safe relative path, or undefined. */
export function safeRepoPath(path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '' || path.length > 1024 || path.startsWith('/') || path.includes('\\') || path.includes('\0')) return undefined;
  return path.split('/').some((s) => s === '' || s === '.' || s === '..') ? undefined : path;
}

/** One page of a tree listing: its files (directories are skipped). `what` names the request in errors. */
export function parseTreeListing(text: string, what: string): HubFile[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HubError(`${what}: the Hub's answer is not JSON (${JSON.stringify(text.slice(0, 60))}…)`);
  }
  if (!Array.isArray(value)) throw new HubError(`${what}: the Hub's listing is not an array`);
  if (value.length > MAX_LISTED_FILES) throw new HubError(`${what}: the listing has ${value.length} entries (more than ${MAX_LISTED_FILES})`);
  const files: HubFile[] = [];
  const seen = new Set<string>();
  for (const [i, entry] of value.entries()) {
    const bad = (why: string) => new HubError(`${what}: listing entry ${i} ${why}`);
    if (!entry || typeof entry !== 'object') throw bad('is not an object');
    const e = entry as Record<string, unknown>;
    if (e.type === 'directory') continue;
    if (e.type !== 'file') throw bad(`has type ${shown(e.type)}`);
    const path = safeRepoPath(e.path);
    if (!path) throw bad(`has the path ${shown(e.path)}`);
    if (!isSize(e.size)) throw bad(`(${path}) has the size ${shown(e.size)}`);
    const file: HubFile = { path, size: e.size };
    if (isHex(e.oid, 40)) file.gitSha1 = e.oid;
    if (e.lfs !== undefined && e.lfs !== null) {
      const lfs = e.lfs as Record<string, unknown>;
      if (typeof lfs !== 'object' || !isHex(lfs.oid, 64)) throw bad(`(${path}) has an LFS entry without a SHA-256`);
      if (lfs.size !== undefined && lfs.size !== e.size) throw bad(`(${path}) says ${e.size} bytes and its LFS entry ${shown(lfs.size)}`);
      file.sha256 = lfs.oid;
    }
    if (seen.has(path)) throw bad(`(${path}) lists a file listed before`);
    seen.add(path);
    files.push(file);
  }
  return files;
}

/** `Content-Range: bytes a-b/total` (total may be '*'); undefined for anything else. */
export function parseContentRange(header: string | null): { first: number; last: number; total?: number } | undefined {
  const m = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16}|\*)$/.exec((header ?? '').trim());
  if (!m) return undefined;
  const [first, last] = [Number(m[1]), Number(m[2])];
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (last < first || (total !== undefined && last >= total)) return undefined;
  return { first, last, total };
}

/** The next page of a paginated listing: the `Link` header's rel="next" URL (the Hub pages long listings). */
export function nextPageUrl(link: string | null): string | undefined {
  for (const part of (link ?? '').split(',')) {
    const m = /^\s*<([^>]*)>\s*;\s*rel="?next"?\s*$/.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

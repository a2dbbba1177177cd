// Fetches a model directory (manifest.json and the files it lists), checks every file's size and SHA-256 against the
// manifest, and reports progress. A server that answers with an HTML page instead of a model file (a common
// misconfiguration) is caught here with a message that says so.
import { ManifestError, parseAnyManifest, type AnyManifest, type ManifestFile } from '../model/manifest.ts';
import { describeStorageError, type ModelCache } from './model-cache.ts';

export interface LoadedModel {
  manifest: AnyManifest;
  files: Map<string, Uint8Array>;
  /** Problems that did not stop the load (a file that could not be cached), for the page to show. */
  notices: string[];
}

export type LoadProgress = (message: string, loaded: number, total: number) => void;

/**
 * With a `cache` (model-cache.ts), files are taken from it by SHA-256 when present and valid, and stored after
 * download. `accept` sees the manifest before any model file is fetched (the fit check) and throws to refuse it.
 */
export async function loadModelDirectory(baseUrl: string, onProgress: LoadProgress, cache?: ModelCache, accept?: (manifest: AnyManifest) => void): Promise<LoadedModel> {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const manifestResponse = await fetchOk(`${base}manifest.json`);
  const manifest = parseAnyManifest(await manifestResponse.text());
  accept?.(manifest);
  const total = manifest.files.reduce((sum, f) => sum + f.bytes, 0);
  let loaded = 0;
  const files = new Map<string, Uint8Array>();
  const notices: string[] = [];
  for (const entry of manifest.files) {
    onProgress(`loading ${entry.path}`, loaded, total);
    const done = loaded;
    const bytes = (await fromCache(entry, cache)) ?? (await download(base, entry, cache, (notice) => notices.push(notice), (received) => onProgress(`downloading ${entry.path}`, done + received, total)));
    files.set(entry.path, bytes);
    loaded += entry.bytes;
  }
  onProgress('model files verified', loaded, total);
  return { manifest, files, notices };
}

/**
 * A prepared directory the person chose from disk (`<input webkitdirectory>`): nothing is uploaded, the files are
 * read here and checked against the manifest's sizes and hashes like downloaded ones.
 */
export async function loadModelFiles(chosen: readonly File[], onProgress: LoadProgress, accept?: (manifest: AnyManifest) => void): Promise<LoadedModel> {
  const byPath = new Map(chosen.map((f) => [relativePath(f), f]));
  const manifestFile = byPath.get('manifest.json');
  if (!manifestFile) throw new ManifestError(`the chosen folder has no manifest.json at its top (${chosen.length} files); choose the folder prepare-model wrote`);
  const manifest = parseAnyManifest(await manifestFile.text());
  accept?.(manifest);
  const total = manifest.files.reduce((sum, f) => sum + f.bytes, 0);
  const files = new Map<string, Uint8Array>();
  let loaded = 0;
  for (const entry of manifest.files) {
    onProgress(`reading ${entry.path}`, loaded, total);
    const file = byPath.get(entry.path);
    if (!file) throw new ManifestError(`${entry.path} is listed in the manifest but missing from the chosen folder`);
    const bytes = new Uint8Array(await file.arrayBuffer());
    await verify(entry, bytes);
    files.set(entry.path, bytes);
    loaded += entry.bytes;
  }
  onProgress('model files verified', loaded, total);
  return { manifest, files, notices: [] };
}

/** The path inside the chosen folder: webkitRelativePath is `<folder>/<path>`. */
const relativePath = (f: File) => (f.webkitRelativePath ? f.webkitRelativePath.split('/').slice(1).join('/') : f.name);

async function fromCache(entry: ManifestFile, cache: ModelCache | undefined): Promise<Uint8Array | undefined> {
  const bytes = await cache?.get(entry.sha256).catch(() => undefined);
  if (!bytes) return undefined;
  try {
    await verify(entry, bytes);
    return bytes;
  } catch {
    await cache!.delete(entry.sha256).catch(() => undefined); // corrupt entry: drop it and download again
    return undefined;
  }
}

async function download(base: string, entry: ManifestFile, cache: ModelCache | undefined, notice: (message: string) => void, onBytes: (received: number) => void): Promise<Uint8Array> {
  const bytes = await readBody(await fetchOk(base + entry.path), entry, onBytes);
  await verify(entry, bytes); // before caching: an HTML page or a wrong file never enters the cache
  await cache?.put(entry.sha256, bytes).catch((error) => notice(describeStorageError(entry.path, error)));
  return bytes;
}

/**
 * The body, read in chunks so a large file reports its progress in bytes. It is read into one buffer of the
 * manifest's size: a server sending more than that is stopped at once (a wrong or hostile file), a shorter body is
 * caught by verify() — a half-downloaded file is never used or cached.
 */
async function readBody(response: Response, entry: ManifestFile, onBytes: (received: number) => void): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const out = new Uint8Array(entry.bytes);
  const reader = response.body.getReader();
  let received = 0;
  let lastReport = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.byteLength > entry.bytes) {
      await reader.cancel();
      if (looksLikeHtml(received ? out : value)) throw htmlError(entry);
      throw new ManifestError(`${entry.path}: the server sent more than the manifest's ${entry.bytes} bytes (a different file?)`);
    }
    out.set(value, received);
    received += value.byteLength;
    if (received - lastReport >= 1 << 20) onBytes((lastReport = received));
  }
  onBytes(received);
  return received === entry.bytes ? out : out.subarray(0, received);
}

const looksLikeHtml = (bytes: Uint8Array) => /^\s*<(!doctype|html)/i.test(new TextDecoder().decode(bytes.subarray(0, 64)));
const htmlError = (entry: ManifestFile) => new ManifestError(`${entry.path}: the server sent an HTML page instead of the model file`);

async function fetchOk(url: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ManifestError(`could not fetch ${url}: ${(error as Error).message}`);
  }
  if (!response.ok) throw new ManifestError(`could not fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}

async function verify(entry: ManifestFile, bytes: Uint8Array): Promise<void> {
  if (looksLikeHtml(bytes)) throw htmlError(entry);
  if (bytes.byteLength !== entry.bytes) {
    throw new ManifestError(`${entry.path}: expected ${entry.bytes} bytes, got ${bytes.byteLength} (truncated or replaced file)`);
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  const hex = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
  if (hex !== entry.sha256) throw new ManifestError(`${entry.path}: SHA-256 ${hex.slice(0, 12)}… does not match the manifest's ${entry.sha256.slice(0, 12)}…`);
}

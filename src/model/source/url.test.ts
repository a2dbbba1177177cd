// The URL model source against a real HTTP server (node:http on 127.0.0.1) serving the embedded model, which can
// answer a file with an HTML page, a short body, a connection that drops, too many bytes or a 404; and its cache
// logic with the real stream plumbing of cache.ts (`storeStream`) over an in-memory store in place of the browser's
// Cache API (which exists only in browsers: e2e/storage-quota.spec.ts and the e2e loading specs cover that one);
// and the worker's loadModelDirectory over it.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAnyManifest } from '../manifest.ts';
import { storeStream, type ModelCache } from './cache.ts';
import type { ModelChunk } from './source.ts';
import { openUrlSource } from './url.ts';
import { openModelUrl, readEveryFile } from '../../worker/model-loader.ts';

const MODELS = new URL('../../../models/', import.meta.url);
const manifest = parseAnyManifest(readFileSync(new URL('manifest.json', MODELS), 'utf8'));
const fileBytes = (path: string) => readFileSync(new URL(path, MODELS));
const WEIGHTS = 'unet.onnx.data'; // 4.2 MB
const weightsEntry = manifest.files.find((f) => f.path === WEIGHTS)!;

type Answer = 'file' | 'html' | 'short' | 'drop' | 'extra' | 'missing';
/** How the server answers each path (default: the file); requests counted per path. */
const answers = new Map<string, Answer>();
const requests = new Map<string, number>();
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url!, 'http://x').pathname.slice(1));
    requests.set(path, (requests.get(path) ?? 0) + 1);
    const answer = answers.get(path) ?? 'file';
    let body: Buffer;
    try {
      body = fileBytes(path);
    } catch {
      return void response.writeHead(404, 'Not Found').end('no such file');
    }
    if (answer === 'missing') return void response.writeHead(404, 'Not Found').end();
    if (answer === 'html') return void response.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body>Not the model</body></html>');
    if (answer === 'short') return void response.writeHead(200).end(body.subarray(0, body.length >> 1)); // a clean end, half the bytes
    if (answer === 'extra') return void response.writeHead(200).end(Buffer.concat([body, Buffer.alloc(100)]));
    if (answer === 'drop') {
      // Announces the whole file, sends a third, then the connection breaks.
      response.writeHead(200, { 'content-length': String(body.length) });
      return void response.write(body.subarray(0, body.length / 3), () => response.destroy());
    }
    // The whole file in pieces of 100 kB, as a network delivers it.
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    for (let at = 0; at < body.length; at += 100_000) response.write(body.subarray(at, at + 100_000));
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  answers.clear();
  requests.clear();
});

/** An in-memory ModelCache with cache.ts's real stream writer; `refuse` makes storing fail like a full quota. */
function memoryCache(refuse?: 'at-commit' | 'at-once') {
  const entries = new Map<string, Uint8Array>();
  const quota = () => new DOMException('quota exceeded', 'QuotaExceededError');
  const cache: ModelCache = {
    async get(sha256) {
      const bytes = entries.get(sha256);
      return bytes && new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
    },
    begin: (sha256) => storeStream(async (body) => {
      if (refuse === 'at-once') throw quota(); // never reads the body: writes must not wait on it for ever
      const bytes = new Uint8Array(await new Response(body).arrayBuffer());
      if (refuse === 'at-commit') throw quota();
      entries.set(sha256, bytes);
    }),
    delete: async (sha256) => void entries.delete(sha256),
    clear: async () => ({ files: 0, bytes: 0 }),
  };
  return { cache, entries };
}

async function collect(chunks: AsyncIterable<ModelChunk>): Promise<ModelChunk[]> {
  const out: ModelChunk[] = [];
  for await (const c of chunks) out.push({ offset: c.offset, bytes: c.bytes.slice() });
  return out;
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

function assemble(chunks: ModelChunk[], size: number): Buffer {
  const out = Buffer.alloc(size);
  for (const c of chunks) out.set(c.bytes, c.offset);
  return out;
}

describe('URL source over HTTP', () => {
  it('downloads every file whole and in chunks equal to the served files, with progress from the network', async () => {
    const source = await openUrlSource(base.slice(0, -1)); // without the trailing slash
    for (const entry of source.manifest.files) expect(same(await source.read(entry.path), fileBytes(entry.path))).toBe(true);
    const progress: number[] = [];
    const chunks = await collect(source.stream(WEIGHTS, { chunkBytes: 1 << 20, onBytes: (received, from) => from === 'network' && progress.push(received) }));
    expect(chunks.map((c) => c.offset)).toEqual([0, 1, 2, 3, 4].map((i) => i << 20)); // 100 kB pieces regrouped into MiB chunks
    expect(assemble(chunks, weightsEntry.bytes).equals(fileBytes(WEIGHTS))).toBe(true);
    expect(progress.at(-1)).toBe(weightsEntry.bytes);
  });

  it('names an HTML page, a short body, a dropped connection, too many bytes and a 404', async () => {
    const source = await openUrlSource(base);
    const cases: [Answer, RegExp][] = [
      ['html', /^unet\.onnx\.data: the server sent an HTML page instead of the model file$/],
      ['short', new RegExp(`^unet\\.onnx\\.data: expected ${weightsEntry.bytes} bytes, got ${weightsEntry.bytes >> 1} \\(truncated or replaced file\\)$`)],
      ['drop', /^unet\.onnx\.data: the download broke off \(.+\); try again$/],
      ['extra', new RegExp(`^unet\\.onnx\\.data: the server sent more than the manifest's ${weightsEntry.bytes} bytes \\(a different file\\?\\)$`)],
      ['missing', /^could not fetch http:\/\/127\.0\.0\.1:\d+\/unet\.onnx\.data: HTTP 404 Not Found$/],
    ];
    for (const [answer, message] of cases) {
      answers.set(WEIGHTS, answer);
      await expect(source.read(WEIGHTS), answer).rejects.toThrow(message);
      const handedOut = await collect(source.stream(WEIGHTS, { chunkBytes: 1 << 20 })).catch(() => 'refused');
      expect(handedOut, answer).toBe('refused');
    }
  });

  it('an HTML page served as the manifest is named', async () => {
    answers.set('manifest.json', 'html');
    await expect(openUrlSource(base)).rejects.toThrow(/model manifest is not JSON \(it starts with "<!DOCTYPE html>/);
  });

  it('stops a download when its signal aborts, with an AbortError', async () => {
    const source = await openUrlSource(base);
    const controller = new AbortController();
    const run = async () => {
      for await (const _ of source.stream(WEIGHTS, { chunkBytes: 1 << 20, signal: controller.signal })) controller.abort();
    };
    await expect(run()).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('URL source with a cache', () => {
  it('caches a download as it passes and serves the next read from the cache, not the network', async () => {
    const { cache, entries } = memoryCache();
    const source = await openUrlSource(base, { cache });
    expect(same(await source.read(WEIGHTS), fileBytes(WEIGHTS))).toBe(true);
    expect(Buffer.from(entries.get(weightsEntry.sha256)!).equals(fileBytes(WEIGHTS))).toBe(true);
    const from = new Set<string>();
    const chunks = await collect(source.stream(WEIGHTS, { onBytes: (_, origin) => from.add(origin) }));
    expect(assemble(chunks, weightsEntry.bytes).equals(fileBytes(WEIGHTS))).toBe(true);
    expect([...from]).toEqual(['cache']);
    expect(requests.get(WEIGHTS)).toBe(1);
  });

  it('never caches an HTML page, a short body or too many bytes', async () => {
    const { cache, entries } = memoryCache();
    const source = await openUrlSource(base, { cache });
    for (const answer of ['html', 'short', 'extra', 'drop'] as const) {
      answers.set(WEIGHTS, answer);
      await expect(source.read(WEIGHTS), answer).rejects.toThrow(/unet\.onnx\.data: /);
      expect(entries.size, answer).toBe(0);
    }
  });

  it('a corrupt cache entry found mid-stream is dropped and the file downloaded, its chunks starting over at offset 0', async () => {
    const { cache, entries } = memoryCache();
    const corrupt = new Uint8Array(fileBytes(WEIGHTS));
    corrupt[4_100_000] ^= 0x80; // in the last chunk: found only when the whole file was hashed
    entries.set(weightsEntry.sha256, corrupt);
    const source = await openUrlSource(base, { cache });
    const origins: string[] = [];
    const chunks = await collect(source.stream(WEIGHTS, { chunkBytes: 1 << 20, onBytes: (_, from) => origins.at(-1) !== from && origins.push(from) }));
    const MiB = 1 << 20;
    expect(chunks.map((c) => c.offset / MiB)).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 4]); // the cache's first four, then all from the network
    expect(origins).toEqual(['cache', 'network']);
    expect(assemble(chunks, weightsEntry.bytes).equals(fileBytes(WEIGHTS))).toBe(true); // later chunks rewrote the same positions
    expect(Buffer.from(entries.get(weightsEntry.sha256)!).equals(fileBytes(WEIGHTS))).toBe(true); // cached again, correct
  });

  it('a full quota becomes a notice naming the file and the read still succeeds, whether storing fails at once or at the end', async () => {
    for (const refuse of ['at-once', 'at-commit'] as const) {
      const { cache, entries } = memoryCache(refuse);
      const notices: string[] = [];
      const source = await openUrlSource(base, { cache, onNotice: (n) => notices.push(n) });
      expect(same(await source.read(WEIGHTS), fileBytes(WEIGHTS)), refuse).toBe(true);
      expect(notices, refuse).toEqual([`browser storage is full (QuotaExceededError): ${WEIGHTS} is not cached and will be downloaded again next visit; free site data to cache it`]);
      expect(entries.size).toBe(0);
    }
  });
});

describe('the worker\'s loader over the URL source (openModelUrl, readEveryFile)', () => {
  it('shows the manifest to `accept` before fetching any model file, and reports byte progress per file', async () => {
    const { cache } = memoryCache('at-once');
    const seen: string[] = [];
    const progress: { message: string; loaded: number; total: number }[] = [];
    const loaded = await openModelUrl(base, cache, (m) => {
      seen.push(`accept ${m.name}`, ...[...requests.keys()]);
    });
    expect(seen).toEqual([`accept ${manifest.name}`, 'manifest.json']);
    const files = await readEveryFile(loaded.source, (message, done, total) => progress.push({ message, loaded: done, total }));
    for (const entry of manifest.files) expect(same(files.get(entry.path)!, fileBytes(entry.path))).toBe(true);
    const total = manifest.files.reduce((s, f) => s + f.bytes, 0);
    expect(progress.at(-1)).toEqual({ message: 'model files verified', loaded: total, total });
    expect(progress.some((p) => p.message === `downloading ${WEIGHTS}`)).toBe(true);
    expect(progress.map((p) => p.loaded)).toEqual(progress.map((p) => p.loaded).sort((a, b) => a - b));
    expect(loaded.notices).toHaveLength(manifest.files.length); // each file's quota notice, for the page
    expect(same(await loaded.source.read(WEIGHTS), fileBytes(WEIGHTS))).toBe(true); // the source reads again
  });

  it('a refusal by `accept` (the fit check) fetches no model file', async () => {
    await expect(openModelUrl(base, undefined, () => { throw new Error('will not fit'); })).rejects.toThrow('will not fit');
    expect([...requests.keys()]).toEqual(['manifest.json']);
  });
});

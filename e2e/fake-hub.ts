// A local stand-in for the Hugging Face Hub, for tests with no network (unit tests in Node and the browser e2e): it
// serves folders on disk as repositories with the Hub's URL layout and behaviour, as huggingface.js and
// huggingface_hub expect it:
//   - `GET /api/models/<owner>/<name>/tree/<revision>/<path>?recursive=true`: the listing, each file with its size,
//     git blob SHA-1 (`oid`) and, for LFS files, `lfs: { oid: <SHA-256>, size, pointerSize }`;
//   - `GET|HEAD /<owner>/<name>/resolve/<revision>/<path>`: small files served directly; LFS files (by extension, as a
//     repository's .gitattributes makes them) answered with a 302 to a CDN path (`/cdn/<repo>/<sha256>`) and the headers
//     the Hub sends for them (X-Linked-Etag, X-Linked-Size, X-Repo-Commit);
//   - range requests (206 + Content-Range, 416 past the end), ETag, Accept-Ranges; CORS as the Hub sends it
//     (Access-Control-Allow-Origin *, the exposed headers, preflight); X-Error-Code on 404 / 401.
// Faults for the tests: cut a response after some bytes (a dropped connection), announce a wrong size or hash,
// answer 404 for a listed file. Every request is recorded.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

/** How long a cut response stays open after its last byte (see the cut below). */
const CUT_AFTER_MS = 500;
const LFS_EXTENSIONS = ['.onnx', '.pb', '.onnx_data', '.safetensors', '.bin'];
const EXPOSED = 'X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,ETag,Link,Accept-Ranges,Content-Range,X-Linked-Size,X-Linked-ETag';

export interface FakeHubFaults {
  /** Responses for these paths (`<repo>/<path>`) are cut after this many body bytes, this many times. */
  cut?: { path: string; afterBytes: number; times: number };
  /** The listing announces this size for a file (the file itself is served as it is). */
  announceSize?: Record<string, number>;
  /** The listing announces this SHA-256 for an LFS file. */
  announceSha256?: Record<string, string>;
  /** Listed, but /resolve answers 404. */
  missing?: string[];
}

interface RepoFile { path: string; full: string; size: number; sha256: string; gitSha1: string; lfs: boolean }

export interface FakeHub {
  url: string;
  /** Every request's method, path (with query) and Range header. */
  requests: string[];
  faults: FakeHubFaults;
  close(): Promise<void>;
}

/** `repos`: repository id → folder on disk. Listens on `port` (0: any free port) on 127.0.0.1. */
export async function startFakeHub(repos: Record<string, string>, port = 0): Promise<FakeHub> {
  const files = new Map(Object.entries(repos).map(([id, dir]) => [id, scan(dir)]));
  const hub: FakeHub = { url: '', requests: [], faults: {}, close: async () => undefined };
  const server = createServer((req, res) => {
    hub.requests.push(`${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    cors(res);
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    const url = new URL(req.url ?? '/', 'http://hub');
    const path = decodeURIComponent(url.pathname);
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)\/?(.*)$/.exec(path);
    if (m) return listing(res, m[1], m[3]);
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) return resolve(req, res, m[1], m[3]);
    m = /^\/cdn\/([^/]+\/[^/]+)\/([0-9a-f]{64})$/.exec(path);
    const stored = m && files.get(m[1])?.find((f) => f.lfs && f.sha256 === m![2]);
    if (stored) return serve(req, res, stored, `${m![1]}/${stored.path}`);
    error(res, 404, 'EntryNotFound', 'not found');
  });

  function listing(res: ServerResponse, repo: string, folder: string) {
    const list = files.get(repo);
    if (!list) return error(res, 401, 'RepoNotFound', 'Repository not found');
    const entries = list.filter((f) => !folder || f.path.startsWith(`${folder.replace(/\/$/, '')}/`)).map((f) => {
      const key = `${repo}/${f.path}`;
      const size = hub.faults.announceSize?.[key] ?? f.size;
      return { type: 'file', oid: f.gitSha1, size, path: f.path, ...(f.lfs ? { lfs: { oid: hub.faults.announceSha256?.[key] ?? f.sha256, size, pointerSize: 134 } } : {}) };
    });
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(entries));
  }

  function resolve(req: IncomingMessage, res: ServerResponse, repo: string, path: string) {
    const list = files.get(repo);
    if (!list) return error(res, 401, 'RepoNotFound', 'Repository not found');
    const file = list.find((f) => f.path === path);
    if (!file || hub.faults.missing?.includes(`${repo}/${path}`)) return error(res, 404, 'EntryNotFound', `${path} does not exist`);
    if (!file.lfs) return serve(req, res, file, `${repo}/${path}`);
    res.writeHead(302, {
      Location: `/cdn/${repo}/${file.sha256}`, 'X-Linked-Etag': `"${file.sha256}"`, 'X-Linked-Size': String(file.size), 'X-Repo-Commit': '0'.repeat(40), ETag: `"${file.gitSha1}"`,
    }).end();
  }

  function serve(req: IncomingMessage, res: ServerResponse, file: RepoFile, key: string) {
    const bytes = readFileSync(file.full);
    const etag = `"${file.lfs ? file.sha256 : file.gitSha1}"`;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let [start, end] = [0, bytes.length];
    if (range) {
      [start, end] = [Number(range[1]), range[2] ? Number(range[2]) + 1 : bytes.length];
      if (start >= bytes.length || end > bytes.length || end <= start) {
        return void res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` }).end();
      }
    }
    const headers: Record<string, string> = { 'Content-Length': String(end - start), 'Accept-Ranges': 'bytes', ETag: etag, 'Content-Type': 'application/octet-stream' };
    if (range) headers['Content-Range'] = `bytes ${start}-${end - 1}/${bytes.length}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    const cut = hub.faults.cut;
    if (cut && cut.times > 0 && cut.path === key && end - start > cut.afterBytes) {
      cut.times -= 1;
      // The connection drops a moment after the bytes went out: destroyed at once, the reset can reach the browser
      // with the bytes still in its network buffers, which it then discards (the resume would start at 0).
      res.write(bytes.subarray(start, start + cut.afterBytes), () => setTimeout(() => res.destroy(), CUT_AFTER_MS));
      return;
    }
    res.end(bytes.subarray(start, end));
  }

  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () => new Promise((done) => {
    server.closeAllConnections();
    server.close(() => done());
  });
  return hub;
}

function cors(res: ServerResponse) {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', EXPOSED);
  res.setHeader('Access-Control-Allow-Headers', 'Range, Authorization, Content-Type');
  res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
}

function error(res: ServerResponse, status: number, code: string, message: string) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message }).end(JSON.stringify({ error: message }));
}

function scan(dir: string): RepoFile[] {
  const out: RepoFile[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else {
        const bytes = readFileSync(full);
        const path = relative(dir, full).split(sep).join('/');
        out.push({
          path, full, size: bytes.length, lfs: LFS_EXTENSIONS.some((e) => name.endsWith(e)),
          sha256: createHash('sha256').update(bytes).digest('hex'),
          gitSha1: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
        });
      }
    }
  };
  walk(dir);
  return out;
}

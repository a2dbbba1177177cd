// Shared by the Chromium benches that count what the page's own worker allocates: a vite preview plugin that serves
// the built worker chunk (dist/assets/worker-*.js) with probe scripts in front of it (scripts/fullsize-browser/probe.ts's
// WORKER_PROBE and any bench's own), and extra folders at URL prefixes (a prepared model); and a wait for the page's
// model worker. Nothing of src/ changes: the counters run in the worker's global scope before its first line.
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join, normalize, resolve } from 'node:path';
import type { Page, Worker } from '@playwright/test';
import type { Plugin } from 'vite';
import { WORKER_PROBE } from './fullsize-browser/probe.ts';

export interface ProbedWorkerOptions {
  /** Scripts run after WORKER_PROBE, before the worker (each sees `globalThis.__bench`). */
  probes?: string[];
  /** URL prefix (e.g. '/bench-model/') → folder on disk, served file by file. */
  folders?: Record<string, string>;
}

const WORKER_CHUNK = /^\/assets\/worker-[\w-]+\.js$/; // the page's worker, not clip-worker-* or prepare-worker-*

export function probedWorker(options: ProbedWorkerOptions = {}): Plugin {
  const dist = join(process.cwd(), 'dist');
  const prelude = [WORKER_PROBE, ...(options.probes ?? [])].join('\n');
  const folders = Object.entries(options.folders ?? {}).map(([prefix, dir]) => [prefix, resolve(dir)] as const);
  return {
    name: 'probed-worker',
    configurePreviewServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = decodeURIComponent((req.url ?? '').split('?')[0]);
        if (WORKER_CHUNK.test(path)) {
          const body = Buffer.from(`${prelude}\n${readFileSync(join(dist, path), 'utf8')}`);
          res.setHeader('Content-Type', 'text/javascript');
          res.setHeader('Content-Length', body.byteLength);
          return res.end(body);
        }
        const folder = folders.find(([prefix]) => path.startsWith(prefix));
        if (!folder) return next();
        const file = normalize(join(folder[1], path.slice(folder[0].length)));
        if (!file.startsWith(folder[1]) || !existsSync(file) || !statSync(file).isFile()) return next();
        res.setHeader('Content-Length', statSync(file).size);
        res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        createReadStream(file).pipe(res);
      });
    },
  };
}

/** The page's model worker, once it starts (register before page.goto). */
export function modelWorker(page: Page): Promise<Worker> {
  return new Promise((resolve) => page.on('worker', (w) => { if (/\/worker-[\w-]+\.js/.test(w.url())) resolve(w); }));
}


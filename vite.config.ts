// Vite config: the React page, the module worker, the headers (cross-origin isolation, COOP/COEP, so ORT's WASM can
// use threads; the Content-Security-Policy of scripts/csp.ts), and `models/` served at /models/ (read from disk in
// dev, copied into dist/ on build). Built files: public/_headers carries the same headers (docs/security.md).
// Model directories made for the tests (prepared real-exporter fixtures, `tmp/test-models/`) are served at
// /test-models/ by the dev and preview servers only; they are never part of the build.
import { randomBytes } from 'node:crypto';
import { cpSync, createReadStream, existsSync, statSync } from 'node:fs';
import { join, normalize, resolve } from 'node:path';
import { defineConfig, type Connect, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { contentSecurityPolicy, hubOriginOf, modelOriginOf, STATIC_HEADERS } from './src/security/csp.ts';

/** Dev only: the nonce Vite puts on the scripts it injects (React's refresh preamble is inline). New per start. */
const DEV_NONCE = randomBytes(16).toString('base64');

/**
 * Sets the security headers on every response. connect-src gains the `?model=` (and `?hub=`) origin of the page, read from the
 * request itself (the page) or from its Referer (the worker script and its imports: a worker's CSP is the one
 * delivered with its script, and the worker is what fetches the model).
 */
function securityHeaders(dev: boolean): Plugin {
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const origin = `http://${req.headers.host ?? 'localhost'}`;
    const referer = typeof req.headers.referer === 'string' ? req.headers.referer : '';
    const fromPage = referer.startsWith(`${origin}/`);
    const modelOrigin = modelOriginOf(req.url ?? '/', origin) ?? (fromPage ? modelOriginOf(referer, origin) : undefined);
    const hubOrigin = hubOriginOf(req.url ?? '/', origin) ?? (fromPage ? hubOriginOf(referer, origin) : undefined);
    for (const [name, value] of Object.entries(STATIC_HEADERS)) res.setHeader(name, value);
    res.setHeader('Content-Security-Policy', contentSecurityPolicy({ modelOrigin, hubOrigin, dev: dev ? { nonce: DEV_NONCE } : undefined }));
    next();
  };
  return {
    name: 'npo-security-headers',
    configureServer: (server) => void server.middlewares.use(middleware),
    configurePreviewServer: (server) => void server.middlewares.use(middleware),
  };
}

/** Serves the files under `root` at URL `prefix` (no directory listings, nothing outside root). */
function serveFolder(prefix: string, root: string): Connect.NextHandleFunction {
  return (req, res, next) => {
    const path = decodeURIComponent((req.url ?? '').split('?')[0]);
    if (!path.startsWith(prefix)) return next();
    const file = normalize(join(root, path.slice(prefix.length)));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) return next();
    res.setHeader('Content-Length', statSync(file).size);
    res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    createReadStream(file).pipe(res);
  };
}

function serveModels(): Plugin {
  const root = resolve('models');
  const testModels = serveFolder('/test-models/', resolve('tmp/test-models'));
  return {
    name: 'npo-serve-models',
    configureServer: (server) => void server.middlewares.use(serveFolder('/models/', root)).use(testModels),
    configurePreviewServer: (server) => void server.middlewares.use(testModels),
    closeBundle() {
      cpSync(root, resolve('dist/models'), { recursive: true, filter: (src) => !src.split('/').pop()!.startsWith('.') });
    },
  };
}

export default defineConfig(({ command, isPreview }) => ({
  plugins: [securityHeaders(command === 'serve' && !isPreview), react(), serveModels()],
  worker: { format: 'es' },
  html: command === 'serve' && !isPreview ? { cspNonce: DEV_NONCE } : {},
  // Served as they are in dev: ORT finds its .wasm beside its module; transformers.js (the CLIP worker's, imported on
  // demand) would otherwise be discovered late and re-optimised, reloading the page.
  optimizeDeps: { exclude: ['onnxruntime-web', '@huggingface/transformers'] },
}));

// Vite config: the React page, the module worker, the headers that let ORT's WASM use threads (cross-origin
// isolation: COOP/COEP), and `models/` served at /models/ (read from disk in dev, copied into dist/ on build).
// Model directories made for the tests (prepared real-exporter fixtures, `tmp/test-models/`) are served at
// /test-models/ by the dev and preview servers only; they are never part of the build.
import { cpSync, createReadStream, existsSync, statSync } from 'node:fs';
import { join, normalize, resolve } from 'node:path';
import { defineConfig, type Connect, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

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

export default defineConfig({
  plugins: [react(), serveModels()],
  worker: { format: 'es' },
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
});

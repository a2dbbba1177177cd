// Vite config: the React page, the module worker, the headers that let ORT's WASM use threads (cross-origin
// isolation: COOP/COEP), and `models/` served at /models/ (read from disk in dev, copied into dist/ on build).
import { cpSync, createReadStream, existsSync, statSync } from 'node:fs';
import { join, normalize, resolve } from 'node:path';
import { defineConfig, type Connect, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

function serveModels(): Plugin {
  const root = resolve('models');
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const path = decodeURIComponent((req.url ?? '').split('?')[0]);
    if (!path.startsWith('/models/')) return next();
    const file = normalize(join(root, path.slice('/models/'.length)));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) return next();
    res.setHeader('Content-Length', statSync(file).size);
    res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    createReadStream(file).pipe(res);
  };
  return {
    name: 'npo-serve-models',
    configureServer: (server) => void server.middlewares.use(middleware),
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

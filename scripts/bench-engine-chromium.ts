// The engine benchmark (issue 6) in headless Chromium, the real target: the same measurements and table as
// `npm run bench` (engine-bench/measure.ts), run per backend in a page that picks its backend like the app's worker
// (onnxruntime-web/webgpu on navigator.gpu, or its WASM EP). Without a GPU, Chromium's WebGPU is SwiftShader, a
// software rasteriser: those numbers say nothing about real GPUs.
// esbuild bundles engine-bench/page.ts (`*.wgsl?raw` as text, like Vite); every request of the page is answered by
// page.route on a made-up http://127.0.0.1 origin (a secure context; no server): the bundle, ORT's .wasm/.mjs from
// node_modules, and the model files built here. COOP/COEP headers as in vite.config.ts.
// Run: `npm run bench:chromium` with the options of `npm run bench` (--model embedded, --steps N, --repeats R,
// --backend webgpu|wasm).
// Browser: $CHROMIUM_PATH, else /usr/bin/chromium, else Playwright's own download.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium, type Browser, type Route } from 'playwright-core';
import { benchArgs, loadBenchModel } from './engine-bench/model.ts';
import { formatHeader, formatRow, type BenchBackend, type BenchRow } from './engine-bench/measure.ts';
import type { EngineBenchPage } from './engine-bench/page.ts';

const here = dirname(fileURLToPath(import.meta.url));
const ORIGIN = 'http://127.0.0.1:9';
const ORT_DIST = resolve(here, '../node_modules/onnxruntime-web/dist');
const args = benchArgs(process.argv.slice(2));
const { manifest, files } = loadBenchModel(args.model);

/** `import text from './x.wgsl?raw'` → the file's text, as Vite serves it. */
const rawText: Plugin = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (a) => ({ path: resolve(a.resolveDir, a.path.slice(0, -'?raw'.length)), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (a) => ({ contents: readFileSync(a.path, 'utf8'), loader: 'text' }));
  },
};

async function bundlePage() {
  // ESM, because ORT's bundle finds its wasm through import.meta.url and loads it with dynamic import().
  const out = await build({ entryPoints: [resolve(here, 'engine-bench/page.ts')], bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'error', plugins: [rawText] });
  return out.outputFiles[0].text;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

/** Everything the page asks for, from memory or node_modules; anything else is a 404 (nothing leaves the machine). */
function serve(bundle: string) {
  const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
  const modelFile = (path: string) => (path === 'manifest.json' ? new TextEncoder().encode(JSON.stringify(manifest)) : files.get(path));
  return async (route: Route) => {
    const path = decodeURIComponent(new URL(route.request().url()).pathname);
    const reply = (body: string | Uint8Array | undefined, contentType: string) =>
      body === undefined ? route.fulfill({ status: 404, body: `not served: ${path}` }) : route.fulfill({ status: 200, headers: isolation, contentType, body: typeof body === 'string' ? body : Buffer.from(body) });
    if (path === '/') return reply('<!doctype html><script type="module" src="/bench.js"></script>', 'text/html');
    if (path === '/bench.js') return reply(bundle, 'text/javascript');
    if (path.startsWith('/ort/')) {
      const file = join(ORT_DIST, path.slice('/ort/'.length).replace(/\.\.+/g, ''));
      return reply(existsSync(file) ? readFileSync(file) : undefined, TYPES[extname(file)] ?? 'application/octet-stream');
    }
    if (path.startsWith('/model/')) return reply(modelFile(path.slice('/model/'.length)), 'application/octet-stream');
    return reply(undefined, '');
  };
}

/** One backend in a fresh page, so each gets its own ORT instance and GPU device (as `npm run bench` does). */
async function runInPage(browser: Browser, bundle: string, backend: BenchBackend): Promise<BenchRow> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  // ORT logs its own warnings (e.g. shape ops placed on the CPU) through console.error; they are not failures.
  page.on('console', (m) => { if (m.type() === 'error' && !/\[W:onnxruntime/.test(m.text())) console.error(`[page console.error] ${m.text()}`); });
  try {
    await page.route(`${ORIGIN}/**`, serve(bundle));
    await page.goto(`${ORIGIN}/`);
    await page.waitForFunction(() => 'engineBench' in globalThis);
    return await page.evaluate(
      ([b, steps, repeats, origin]) => (globalThis as unknown as { engineBench: EngineBenchPage }).engineBench.runBackend(b, steps, repeats, `${origin}/model`, `${origin}/ort/`),
      [backend, args.steps, args.repeats, ORIGIN] as const,
    );
  } finally {
    await page.close();
  }
}

const executablePath = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined);
const bundle = await bundlePage();
const browser = await chromium.launch({ executablePath, args: ['--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic'] });
try {
  const params = { ...manifest.defaults, steps: args.steps };
  console.log(`${formatHeader(manifest, params, args.repeats)}\nbrowser: Chromium ${browser.version()} (headless; the page's main thread)`);
  for (const backend of args.backends) console.log(formatRow(await runInPage(browser, bundle, backend)).join('\n'));
} finally {
  await browser.close();
}

// Node-only: opens chromium-harness.ts in headless Chromium (WebGPU through SwiftShader without a GPU) for the
// Chromium check and the benchmark. esbuild bundles the harness, serving `*.wgsl?raw` as text like Vite does; the
// page lives on a routed http://127.0.0.1 origin (a secure context, no server needed).
// Browser: $CHROMIUM_PATH, else Debian's /usr/bin/chromium, else Playwright's own download.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium, type Page } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

const rawText: Plugin = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.slice(0, -4)), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

/**
 * Runs `fn` with a page that has a harness loaded (by default chromium-harness.ts: globalThis.mergeHarness; `entry`
 * names another file that sets its own global); closes the browser afterwards.
 */
export async function withHarnessPage<T>(fn: (page: Page, browserVersion: string) => Promise<T>, entry = resolve(here, 'chromium-harness.ts')): Promise<T> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'iife',
    target: 'es2022',
    write: false,
    plugins: [rawText],
  });
  const script = bundle.outputFiles[0].text.replace(/<\/script/gi, '<\\/script');
  const executablePath = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined);
  const browser = await chromium.launch({
    executablePath,
    args: ['--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    const origin = 'http://127.0.0.1:9';
    await page.route(`${origin}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: `<!doctype html><script>${script}</script>` }),
    );
    await page.goto(`${origin}/`);
    if (!(await page.evaluate(() => !!navigator.gpu))) throw new Error('this Chromium exposes no navigator.gpu (flags?)');
    return await fn(page, browser.version());
  } finally {
    await browser.close();
  }
}

// The merge kernel checked in real Chromium (WebGPU through SwiftShader without a GPU): bundles chromium-harness.ts
// with esbuild (serving `*.wgsl?raw` as text, like Vite), opens it in headless Chromium via Playwright on a routed
// http://127.0.0.1 origin (a secure context, no server needed) and fails unless every case is within tolerance.
// Run: `npm run test:gpu:chromium`. Browser: $CHROMIUM_PATH, else /usr/bin/chromium, else Playwright's own.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium } from 'playwright-core';
import type { runMergeChecks } from './chromium-harness.ts';

const here = dirname(fileURLToPath(import.meta.url));

const rawText: Plugin = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({ path: resolve(args.resolveDir, args.path.slice(0, -4)), namespace: 'raw' }));
    b.onLoad({ filter: /.*/, namespace: 'raw' }, (args) => ({ contents: readFileSync(args.path, 'utf8'), loader: 'text' }));
  },
};

async function main(): Promise<number> {
  const bundle = await build({
    entryPoints: [resolve(here, 'chromium-harness.ts')],
    bundle: true,
    format: 'iife',
    target: 'es2022',
    write: false,
    plugins: [rawText],
  });
  const script = bundle.outputFiles[0].text;
  const executablePath = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined);
  const browser = await chromium.launch({
    executablePath,
    args: ['--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    const page = await browser.newPage();
    const origin = 'http://127.0.0.1:9';
    await page.route(`${origin}/**`, (route) =>
      route.fulfill({ contentType: 'text/html', body: `<!doctype html><script>${script.replace(/<\/script/gi, '<\\/script')}</script>` }),
    );
    await page.goto(`${origin}/`);
    if (!(await page.evaluate(() => !!navigator.gpu))) throw new Error('this Chromium exposes no navigator.gpu');
    const report = await page.evaluate(() => (globalThis as unknown as { runMergeChecks: typeof runMergeChecks }).runMergeChecks());
    console.log(`Chromium ${browser.version()}, adapter: ${report.adapter}, shader-f16: ${report.hasF16}`);
    if (!report.hasF16) console.log('f16 cases skipped: the adapter has no shader-f16');
    let failed = report.errors.length;
    for (const r of report.results) {
      const ok = r.worst <= 1 && r.baseIntact;
      if (!ok) failed++;
      console.log(`${ok ? 'ok  ' : 'FAIL'}  worst err/tol ${r.worst.toExponential(2)}  ${r.baseIntact ? '' : '(base overwritten) '}${r.name}`);
    }
    for (const e of report.errors) console.log(`FAIL  uncaptured GPU error: ${e}`);
    console.log(failed ? `${failed} failure(s)` : `all ${report.results.length} cases within tolerance`);
    return failed ? 1 : 0;
  } finally {
    await browser.close();
  }
}

process.exitCode = await main();

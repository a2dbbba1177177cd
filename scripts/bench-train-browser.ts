// Training throughput in Chromium: the page's own "Train your own δ" flow (worker, onnxruntime-web) on the embedded
// model, per backend and batch size, as steps per second reported by the trainer (session creation excluded).
// Builds the app, serves it with vite preview on 127.0.0.1, drives headless Chromium (WebGPU via SwiftShader here).
// Usage: npm run bench:train:browser [-- --backends wasm,webgpu --batches 1,4 --steps 3]
// `-- --plan-check [--cells wasm/embedded/8,webgpu/sd15/1/16/layers,...] [--steps 2] [--rank 4]`: the training memory
// plan against the page's measured peak (WASM heap growth, GPU buffers alive) instead: bench-train-browser-plan.ts.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { build, preview } from 'vite';
import { parseManifest } from '../src/model/manifest.ts';
import { encodePairs } from '../src/train/pairs.ts';
import { DEFAULT_CELLS, planCheck } from './bench-train-browser-plan.ts';

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'wasm,webgpu' }, batches: { type: 'string', default: '1,4' }, steps: { type: 'string' },
    'plan-check': { type: 'boolean' }, cells: { type: 'string', default: DEFAULT_CELLS }, rank: { type: 'string', default: '4' },
    port: { type: 'string', default: '4195' }, minutes: { type: 'string', default: '20' }, 'sd15-dir': { type: 'string' },
  },
});
if (values['plan-check']) {
  await planCheck({ cells: values.cells!, steps: Number(values.steps ?? 2), rank: Number(values.rank), port: Number(values.port), minutes: Number(values.minutes), sd15Dir: values['sd15-dir'] });
  process.exit(0);
}
values.steps ??= '3';
const manifest = parseManifest(readFileSync('models/manifest.json', 'utf8'));
const size = manifest.unet.config.sampleSize;
const image = (sign: number) => Float32Array.from({ length: 3 * size * size }, (_, i) => sign * Math.sin(i / 7));
const pairs = Array.from({ length: 8 }, () => ({ prompt: manifest.defaults.prompt, winner: image(1), loser: image(-1) }));
const pairsPath = join(mkdtempSync(join(tmpdir(), 'bench-')), 'pairs.json');
writeFileSync(pairsPath, JSON.stringify(encodePairs(pairs, size, size)));

await build({ logLevel: 'warn' });
const server = await preview({ preview: { port: 4186, host: '127.0.0.1', strictPort: true } });
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--enable-unsafe-webgpu', '--disable-background-networking', '--no-first-run', '--disable-quic'] });
const rows: string[][] = [];
try {
  for (const backend of values.backends!.split(',')) {
    for (const batch of values.batches!.split(',').map(Number)) {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:4186/?backend=${backend}&steps=1`);
      await page.locator('main[data-status="ready"]').waitFor({ timeout: 600_000 });
      await page.getByTestId('pairs-file').setInputFiles(pairsPath);
      await page.getByTestId('train-steps').fill(values.steps!);
      await page.getByTestId('train-batch').fill(String(batch));
      await page.getByTestId('train').click();
      await page.getByTestId('use-trained').waitFor({ timeout: 1_800_000 });
      const status = (await page.getByTestId('train-status').textContent()) ?? '';
      const stepsPerSecond = Number(/([\d.]+) steps\/s/.exec(status)?.[1] ?? NaN);
      rows.push([backend, String(batch), values.steps!, stepsPerSecond.toFixed(3), (stepsPerSecond * batch).toFixed(3)]);
      console.log(`${backend} batch ${batch}: ${status}`);
      await page.close();
    }
  }
} finally {
  await browser.close();
  await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
}
console.log('\nDPO/NPO training in Chromium (embedded model, rank 4, page defaults otherwise)');
console.log('| backend | batch | steps | steps/s | pairs/s |\n|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);

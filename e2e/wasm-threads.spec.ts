// ORT's WASM EP runs multi-threaded in the app's worker: the page is cross-origin isolated (COOP/COEP), the worker
// asks for min(4, cores) threads, and ORT's pthread workers start from ORT's own emscripten module (its own URL, not
// the bundled app worker, which would otherwise be loaded again once per thread), and it is the plain WASM build, not
// the bigger asyncify one the WebGPU backend needs (ort-backend.ts). Images still come out, and the same seed still
// gives the same pixels with several threads.
import { expect, test } from '@playwright/test';
import { backendOf, colourCount, differingPixels, openPlayground, pixels, setNumber, waitIdle } from './helpers.ts';

test('WASM runs on several threads and stays deterministic', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'WASM threads: the wasm project only');
  const scripts: string[] = [];
  page.on('request', (r) => { if (/\.(m?js|wasm)(\?|$)/.test(r.url())) scripts.push(new URL(r.url()).pathname); });
  const workers: string[] = [];
  page.on('worker', (w) => workers.push(new URL(w.url()).pathname));

  const errors = await openPlayground(page, info);
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  const expected = Math.min(4, cores);
  test.skip(expected < 2, `navigator.hardwareConcurrency is ${cores}: a 1-core machine runs WASM on one thread`);
  await expect(page.getByTestId('backend')).toHaveAttribute('title', `wasm ×${expected}`);

  // ORT's module came from its own file, the plain build's (Vite names it ort-wasm-simd-threaded-<hash>.mjs); nothing of
  // the asyncify build was fetched; the app worker's script was loaded once (pthreads did not re-run it).
  const plainModule = /\/ort-wasm-simd-threaded-[^/.]*\.mjs$/;
  expect(scripts.filter((p) => plainModule.test(p)).length).toBeGreaterThanOrEqual(1);
  expect(scripts.filter((p) => /\/ort-wasm-simd-threaded-[^/.]*\.wasm$/.test(p))).toHaveLength(1);
  expect(scripts.filter((p) => p.includes('asyncify'))).toEqual([]);
  expect(scripts.filter((p) => /\/worker[^/]*\.js$/.test(p))).toHaveLength(1);
  // Emscripten starts numThreads - 1 pthread workers, all from ORT's module.
  await expect.poll(() => workers.filter((p) => plainModule.test(p)).length).toBeGreaterThanOrEqual(expected - 1);

  await expect(page.getByTestId('error')).toHaveCount(0);
  expect(colourCount(await pixels(page, 'image-baseline'))).toBeGreaterThan(4);
  expect(colourCount(await pixels(page, 'image-npo'))).toBeGreaterThan(4);

  await setNumber(page, 'seed', 11);
  await waitIdle(page);
  const first = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  expect(colourCount(first.baseline)).toBeGreaterThan(4);
  await setNumber(page, 'seed', 12);
  await waitIdle(page);
  expect(differingPixels(first.baseline, await pixels(page, 'image-baseline'))).toBeGreaterThan(100);
  await setNumber(page, 'seed', 11);
  await waitIdle(page);
  expect(differingPixels(first.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  expect(differingPixels(first.npo, await pixels(page, 'image-npo'))).toBe(0);

  await expect(page.getByTestId('error')).toHaveCount(0);
  expect(errors).toEqual([]);
});

// 50 generations in a row on WebGPU leave the worker's live GPU buffers and its JS heap flat (issue 6), and model
// files come from the Cache API on a second visit (on WASM). Uses the tiny fixture model (e2e/gpu-helpers.ts) with 1 step:
// SwiftShader compiles ORT's shaders slowly, and the point here is lifetimes, not pictures.
import { expect, test, type Page } from '@playwright/test';
import { colourCount, isBlank, pixels, setNumber, setSlider, sharedPageTest, waitIdle } from './helpers.ts';
import { isTinyModelFile, loseDevice, recordWorkerEvents, serveTinyModel, workerEvents } from './gpu-helpers.ts';
import type { GenerationStats } from '../src/worker/protocol.ts';

// GPU lifetimes need WebGPU. The cache test (tagged @wasm) does not depend on the backend and runs in the wasm project:
// WASM opens the page in a fraction of SwiftShader's time, which compiles ORT's shaders again on every visit.
test.beforeEach(({}, info) => {
  const project = info.tags.includes('@wasm') ? 'wasm' : 'webgpu';
  test.skip(info.project.name !== project, project === 'webgpu' ? 'the WebGPU path; needs --enable-unsafe-webgpu' : 'backend-independent: runs in the wasm project');
});

/**
 * Bytes Chromium attributes to the dedicated worker (performance.measureUserAgentSpecificMemory, available because
 * the page is cross-origin isolated; it measures after a garbage collection, so it is stable but can take seconds).
 */
async function workerMemory(page: import('@playwright/test').Page): Promise<number> {
  return page.evaluate(async () => {
    type Measurement = { breakdown: { bytes: number; attribution: { scope: string }[] }[] };
    const result = await (performance as unknown as { measureUserAgentSpecificMemory(): Promise<Measurement> }).measureUserAgentSpecificMemory();
    return result.breakdown.filter((b) => b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope')).reduce((n, b) => n + b.bytes, 0);
  });
}

const doneStats = async (page: import('@playwright/test').Page) =>
  (await workerEvents(page)).flatMap((e) => (e.type === 'done' && e.stats ? [e.stats] : [])) as GenerationStats[];

/** 50 by default (the number); GPU_E2E_GENERATIONS sets another count for a quick run. */
const GENERATIONS = Number(process.env.GPU_E2E_GENERATIONS ?? 50);

/**
 * The tiny model on WebGPU with 1 step, its worker's events recorded: opened by the first GPU test of a Playwright
 * worker, then shared (sharedPageTest in helpers.ts). The device-loss test runs on the page the 50 generations left,
 * which spares SwiftShader a second open; neither test needs particular settings, only a finished generation.
 */
async function tinyGpuPage(page: Page): Promise<Page> {
  if (isBlank(page)) {
    await recordWorkerEvents(page);
    const model = await serveTinyModel(page);
    await page.goto(`/?backend=webgpu&model=${model}&steps=1`);
    await expect(page.getByTestId('backend')).toHaveText('webgpu');
  }
  await waitIdle(page);
  return page;
}

sharedPageTest(`${GENERATIONS} generations keep the live GPU buffer count and the worker heap flat`, async ({ sharedPage }) => {
  test.setTimeout(900_000);
  const page = await tinyGpuPage(sharedPage);
  const heap: number[] = [];
  for (let i = 1; i <= GENERATIONS; i++) {
    // One generation per round: a new seed, or every fifth round a new ω (other settings along the way). Both in one
    // round would be two whole generations: a 1-step generation has no step boundary at which the second aborts it.
    if (i % 5 === 0) await setSlider(page, 'slider-omega', 3 + (i % 10) / 10);
    else await setNumber(page, 'seed', 100 + i);
    await waitIdle(page);
    if (i % Math.max(1, Math.floor(GENERATIONS / 5)) === 0) heap.push(await workerMemory(page));
  }
  const stats = await doneStats(page);
  expect(stats.length).toBeGreaterThanOrEqual(GENERATIONS);
  expect(new Set(stats.map((s) => s.liveBuffers)).size, `live buffers: ${[...new Set(stats.map((s) => s.liveBuffers))]}`).toBe(1);
  expect(new Set(stats.map((s) => s.liveBufferBytes)).size).toBe(1);
  expect(stats.every((s) => s.loop === 'gpu' && s.readBacks === 2 + 2 * s.previews)).toBe(true);
  console.log(`live GPU buffers ${stats[0].liveBuffers} (${stats[0].liveBufferBytes} bytes); worker memory (MiB) along the run: ${heap.map((b) => (b / 2 ** 20).toFixed(1)).join(', ')}`);
  // Flat: no more than 8 MiB over the first measurement (after a fifth of the run, once caches and pools are warm).
  expect(Math.max(...heap)).toBeLessThan(heap[0] + 8 * 2 ** 20);
});

test('model files come from the Cache API on the second visit', { tag: '@wasm' }, async ({ page }) => {
  await recordWorkerEvents(page);
  const model = await serveTinyModel(page);
  await page.goto(`/?backend=wasm&model=${model}&steps=1`);
  await waitIdle(page);
  // Only the manifest may be fetched now: every model file must come out of the cache (and pass its hash check).
  const fetched: string[] = [];
  await page.route(isTinyModelFile, async (route) => {
    const name = new URL(route.request().url()).pathname.split('/').pop()!;
    if (name !== 'manifest.json') {
      fetched.push(name);
      return route.abort();
    }
    return route.fallback();
  });
  await page.reload();
  await expect(page.getByTestId('backend')).toHaveText('wasm');
  await waitIdle(page);
  expect(fetched).toEqual([]);
});

sharedPageTest('a lost GPU device is reported, and the next generation recreates device and session', async ({ sharedPage }) => {
  const page = await tinyGpuPage(sharedPage);
  const before = (await doneStats(page)).at(-1)!;
  await loseDevice(page);
  await expect(page.getByTestId('error')).toContainText('GPU device lost');
  await setNumber(page, 'seed', 5);
  await waitIdle(page);
  await expect(page.getByTestId('error')).toHaveCount(0);
  expect(colourCount(await pixels(page, 'image-npo'))).toBeGreaterThan(4);
  const after = (await doneStats(page)).at(-1)!;
  // A fresh tracker on the new device: the same buffers as before, none left over from the lost one.
  expect(after).toMatchObject({ loop: 'gpu', readBacks: 2, liveBuffers: before.liveBuffers });
});

// 50 generations in a row on WebGPU leave the worker's live GPU buffers and its JS heap flat (issue 6), and model
// files come from the Cache API on a second visit. Uses the tiny fixture model (e2e/gpu-helpers.ts) with 1 step:
// SwiftShader compiles ORT's shaders slowly, and the point here is lifetimes, not pictures.
import { expect, test } from '@playwright/test';
import { colourCount, pixels, setNumber, waitIdle } from './helpers.ts';
import { isTinyModelFile, loseDevice, recordWorkerEvents, serveTinyModel, workerEvents } from './gpu-helpers.ts';
import type { GenerationStats } from '../src/worker/protocol.ts';

test.beforeEach(({}, info) => test.skip(info.project.name !== 'webgpu', 'the WebGPU path; needs --enable-unsafe-webgpu'));

const doneStats = async (page: import('@playwright/test').Page) =>
  (await workerEvents(page)).flatMap((e) => (e.type === 'done' && e.stats ? [e.stats] : [])) as GenerationStats[];

test('50 generations keep the live GPU buffer count and the worker heap flat', async ({ page }) => {
  test.setTimeout(900_000);
  await recordWorkerEvents(page);
  const model = await serveTinyModel(page);
  await page.goto(`/?backend=webgpu&model=${model}&steps=1`);
  await expect(page.getByTestId('backend')).toHaveText('webgpu');
  await waitIdle(page);
  for (let i = 1; i <= 50; i++) {
    await setNumber(page, 'seed', 100 + i);
    if (i % 5 === 0) await setNumber(page, 'omega', 3 + (i % 10) / 10); // NPO-CFG with other settings too
    await waitIdle(page);
  }
  const stats = await doneStats(page);
  expect(stats.length).toBeGreaterThanOrEqual(50);
  expect(new Set(stats.map((s) => s.liveBuffers)).size, `live buffers: ${[...new Set(stats.map((s) => s.liveBuffers))]}`).toBe(1);
  expect(new Set(stats.map((s) => s.liveBufferBytes)).size).toBe(1);
  expect(stats.every((s) => s.loop === 'gpu' && s.readBacks === 2)).toBe(true);
  const heap = stats.map((s) => s.heapBytes).filter((b): b is number => typeof b === 'number');
  console.log(`live GPU buffers ${stats[0].liveBuffers} (${stats[0].liveBufferBytes} bytes); worker heap first/last: ${heap[0]} / ${heap.at(-1)}`);
  if (heap.length) {
    // Flat: the last ten generations use no more than the first ten plus 8 MiB (GC timing makes single values noisy).
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(heap.slice(-10))).toBeLessThan(mean(heap.slice(0, 10)) + 8 * 2 ** 20);
  }
});

test('model files come from the Cache API on the second visit', async ({ page }) => {
  await recordWorkerEvents(page);
  const model = await serveTinyModel(page);
  await page.goto(`/?backend=webgpu&model=${model}&steps=1`);
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
  await expect(page.getByTestId('backend')).toHaveText('webgpu');
  await waitIdle(page);
  expect(fetched).toEqual([]);
});

test('a lost GPU device is reported, and the next generation recreates device and session', async ({ page }) => {
  await recordWorkerEvents(page);
  const model = await serveTinyModel(page);
  await page.goto(`/?backend=webgpu&model=${model}&steps=1`);
  await waitIdle(page);
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

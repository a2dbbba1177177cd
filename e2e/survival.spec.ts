// The page survives what kills a session elsewhere (issue 13 item 3), each time with a message, and afterwards
// generates the very images it generated before:
//   - the worker crashes (a real allocation the engine refuses, RangeError, uncaught): it is restarted with the same model, the person's
//     settings and pairs stay, and training still works;
//   - a training is cancelled: the page says so and keeps generating;
//   - the GPU device is lost (a real GPUDevice.destroy()): reported, and the next generation recreates it (webgpu).
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import { loseDevice, recordWorkerEvents, serveTinyModel } from './gpu-helpers.ts';
import { embeddedPairsPath } from './pairs-file.ts';
import { allowFor, backendOf, differingPixels, openPlayground, pixels, setNumber, waitIdle } from './helpers.ts';

const both = async (page: Page) => ({ baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') });

/** Generates `seed` again by way of another seed (images already shown for the current settings are not redone). */
async function regenerate(page: Page, info: TestInfo, seed: number) {
  await setNumber(page, 'seed', seed + 1);
  await waitIdle(page, info);
  await setNumber(page, 'seed', seed);
  await waitIdle(page, info);
}

async function expectSameImages(page: Page, before: Awaited<ReturnType<typeof both>>) {
  const after = await both(page);
  expect(differingPixels(before.baseline, after.baseline)).toBe(0);
  expect(differingPixels(before.npo, after.npo)).toBe(0);
}

async function trainOneStep(page: Page, info: TestInfo) {
  for (const [key, value] of [['steps', '1'], ['batch', '1'], ['rank', '2']]) await page.getByTestId(`train-${key}`).fill(value);
  await page.getByTestId('train').click();
  const training = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: 1, trainBatch: 1 });
  await expect(page.getByTestId('use-trained'), training.because).toBeVisible({ timeout: training.ms });
}

test.describe('on wasm', () => {
  // The worker's lifecycle and training's cancel are the same code on both backends; WASM runs them in seconds.
  test.beforeEach(({}, info) => test.skip(backendOf(info) !== 'wasm', 'backend-independent: covered on wasm'));

  test('a worker crash (an allocation refused with a RangeError) restarts the worker: a message, settings and pairs kept, the same images', async ({ page }, info) => {
    await recordWorkerEvents(page);
    const errors = await openPlayground(page, info, '&seed=42');
    await setNumber(page, 'seed', 7); // a setting changed on the page, not in the link
    await waitIdle(page, info);
    const before = await both(page);
    await page.getByTestId('pairs-file').setInputFiles(embeddedPairsPath());
    await page.evaluate(() => (window as unknown as { __worker: Worker }).__worker.postMessage({ type: 'debug-crash' }));
    const reload = await allowFor(page, info, { load: true, generations: 0 });
    await expect(page.getByTestId('notice'), reload.because).toContainText(/recovered from a worker crash \(.*RangeError/, { timeout: reload.ms });
    await waitIdle(page, info);
    await expect(page.getByTestId('seed')).toHaveValue('7');
    await regenerate(page, info, 7);
    await expectSameImages(page, before);
    await trainOneStep(page, info); // the pairs chosen before the crash, trained by the new worker
    expect(errors).toEqual([]);
  });

  test('a cancelled training says so and leaves a page that generates the same images', async ({ page }, info) => {
    const errors = await openPlayground(page, info, '&seed=42');
    const before = await both(page);
    await page.getByTestId('pairs-file').setInputFiles(embeddedPairsPath());
    for (const [key, value] of [['steps', '500'], ['batch', '1'], ['rank', '2']]) await page.getByTestId(`train-${key}`).fill(value);
    await page.getByTestId('train').click();
    const step = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: 1, trainBatch: 1 });
    await expect(page.getByTestId('train-progress'), step.because).not.toHaveAttribute('value', '0', { timeout: step.ms });
    await page.getByTestId('train-cancel').click();
    await expect(page.getByTestId('train-message'), step.because).toContainText('training cancelled', { timeout: step.ms });
    await expect(page.getByTestId('train')).toBeEnabled();
    await regenerate(page, info, 42);
    await expectSameImages(page, before);
    await trainOneStep(page, info);
    expect(errors).toEqual([]);
  });
});

test('a lost GPU device is reported, and the next generation on a new device gives the same images', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'webgpu', 'the WebGPU device; needs --enable-unsafe-webgpu');
  await recordWorkerEvents(page);
  // The tiny fixture model: SwiftShader compiles ORT's shaders slowly, and the point is the recovery, not the picture.
  const errors = await openPlayground(page, info, `&model=${await serveTinyModel(page)}&seed=42`);
  const before = await both(page);
  await loseDevice(page); // GPUDevice.destroy() on the worker's device: device.lost resolves as after a driver reset
  await expect(page.getByTestId('error')).toContainText('GPU device lost');
  await regenerate(page, info, 42);
  await expect(page.getByTestId('error')).toHaveCount(0);
  await expectSameImages(page, before);
  expect(errors).toEqual([]);
});

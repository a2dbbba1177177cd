// Low-resolution previews while sampling (issue 6 item 3): during a long generation each canvas shows the x̂₀
// estimate block-averaged to 16×16 (the embedded model is 32×32), marked with data-preview-step; when the generation
// ends the canvas holds the finished 32×32 image and no preview mark. WASM only: 30 steps of the embedded model take
// a few seconds there, so the 250 ms preview interval passes several times; WebGPU on SwiftShader would need minutes.
import { expect, test } from '@playwright/test';
import { allowFor, colourCount, pixels, settingsQuery, waitIdle } from './helpers.ts';
import { recordWorkerEvents, workerEvents } from './gpu-helpers.ts';

test.beforeEach(({}, info) => test.skip(info.project.name !== 'wasm', 'backend-independent page behaviour; WASM is fast enough for 30 steps'));

test('shows low-resolution previews while sampling, then the finished images', async ({ page }, info) => {
  // A scene that fills the canvas with colour, pinned rather than the manifest's opening (which may be a small shape on
  // black, whose 16×16 preview has few colours): the colour counts below tell a picture from a blank canvas.
  await page.goto(`/?backend=wasm&steps=30${settingsQuery({ prompt: 'a large yellow star on a gray background', seed: 2 })}`);
  // A preview comes during the first generation: at most the page's load and its 30 steps away.
  const budget = await allowFor(page, info, { load: true, steps: 30 });
  // One snapshot taken inside the page, so the preview cannot be replaced between reading its mark and its size.
  const snapshot = await page.waitForFunction(() => {
    const canvas = document.querySelector<HTMLCanvasElement>('[data-testid=image-npo]');
    const step = canvas?.dataset.previewStep;
    if (!canvas || !step) return undefined;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    return { step: Number(step), width: canvas.width, height: canvas.height, rgba: Array.from(data) };
  }, undefined, { timeout: budget.ms, polling: 20 });
  const preview = (await snapshot.jsonValue())!;
  expect(preview.step).toBeGreaterThanOrEqual(1);
  expect(preview.step).toBeLessThan(30);
  expect([preview.width, preview.height]).toEqual([16, 16]);
  expect(colourCount(preview.rgba)).toBeGreaterThan(16); // a picture, not a blank canvas

  await waitIdle(page);
  for (const id of ['image-baseline', 'image-npo'] as const) {
    const canvas = page.getByTestId(id);
    await expect(canvas).not.toHaveAttribute('data-preview-step');
    expect(await canvas.evaluate((c: HTMLCanvasElement) => [c.width, c.height])).toEqual([32, 32]);
    expect(colourCount(await pixels(page, id))).toBeGreaterThan(64);
  }
});

test('?previews=off shows none while sampling (the worker is not asked for any), and the box turns them back on', async ({ page }, info) => {
  await recordWorkerEvents(page);
  await page.goto('/?backend=wasm&steps=30&previews=off');
  await waitIdle(page, info, { load: true, steps: 30 });
  await expect(page.getByTestId('step-previews')).not.toBeChecked();
  const events = await workerEvents(page);
  expect(events.filter((e) => e.type === 'preview')).toEqual([]);
  const done = events.filter((e) => e.type === 'done');
  expect(done.length).toBeGreaterThan(0);
  expect(done.every((e) => e.type === 'done' && e.stats?.previews === 0)).toBe(true);
  await page.getByTestId('step-previews').check();
  await expect(page).not.toHaveURL(/previews=off/);
  await page.getByTestId('step-previews').uncheck();
  await expect(page).toHaveURL(/previews=off/);
});

// Compare view (issue 11, item 1): the wipe shows baseline pixels left of the divider and NPO pixels right of it
// (dragged by mouse and moved by keys), the difference view is |NPO − baseline| × gain, small images scale up without
// smoothing, and a click shows an image at 100 %.
import { expect, test, type Page } from '@playwright/test';
import { backendOf, openPlayground, pixels } from './helpers.ts';

// The page logic here does not depend on the backend: the wasm project covers it (WebGPU on SwiftShader is slow).
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm'));

const GAIN = 4;

async function compareCanvas(page: Page) {
  return page.getByTestId('compare-canvas').evaluate((c: HTMLCanvasElement) => ({
    width: c.width, height: c.height, split: Number(c.dataset.split ?? NaN),
    data: Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data),
  }));
}

/** Pixels of the frame that differ from `expected(sx, sy, channel)` (source coordinates by nearest neighbour), in columns [x0, x1). */
function mismatches(frame: { width: number; height: number; data: number[] }, x0: number, x1: number, expected: (i: number) => number, side = 32) {
  let bad = 0;
  for (let y = 0; y < frame.height; y++) {
    for (let x = x0; x < x1; x++) {
      const src = (Math.floor((y * side) / frame.height) * side + Math.floor((x * side) / frame.width)) * 4;
      for (let c = 0; c < 3; c++) if (frame.data[(y * frame.width + x) * 4 + c] !== expected(src + c)) bad++;
    }
  }
  return bad;
}

test.beforeEach(async ({ page }, info) => {
  await openPlayground(page, info);
});

test('the wipe shows the baseline left of the divider and NPO right of it, wherever the divider is dragged', async ({ page }) => {
  const baseline = await pixels(page, 'image-baseline');
  const npo = await pixels(page, 'image-npo');
  await page.getByTestId('view-wipe').click();
  await expect(page.getByTestId('view-wipe')).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('wipe-divider')).toHaveAttribute('data-position', '0.5000');
  let frame = await compareCanvas(page);
  expect(frame.width).toBeGreaterThan(32 * 4); // scaled up
  expect(frame.split).toBe(Math.round(frame.width / 2));
  expect(mismatches(frame, 0, frame.split, (i) => baseline[i])).toBe(0);
  expect(mismatches(frame, frame.split, frame.width, (i) => npo[i])).toBe(0);
  // The two images differ on both sides, so the checks above could fail.
  expect(mismatches(frame, 0, frame.width, (i) => baseline[i])).toBeGreaterThan(0);

  // Drag the divider to a quarter of the frame.
  const box = (await page.getByTestId('compare-canvas').boundingBox())!;
  const handle = (await page.getByTestId('wipe-divider').boundingBox())!;
  await page.mouse.move(handle.x + handle.width / 2, handle.y + handle.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.25, box.y + 10, { steps: 5 });
  await page.mouse.up();
  await expect.poll(async () => Number(await page.getByTestId('wipe-divider').getAttribute('data-position'))).toBeCloseTo(0.25, 2);
  frame = await compareCanvas(page);
  expect(Math.abs(frame.split - frame.width * 0.25)).toBeLessThanOrEqual(2);
  expect(mismatches(frame, 0, frame.split, (i) => baseline[i])).toBe(0);
  expect(mismatches(frame, frame.split, frame.width, (i) => npo[i])).toBe(0);

  // Arrow keys on the focused divider move it too.
  const before = Number(await page.getByTestId('wipe-divider').getAttribute('data-position'));
  await page.getByTestId('wipe-divider').focus();
  await page.keyboard.press('ArrowRight');
  await expect.poll(async () => Number(await page.getByTestId('wipe-divider').getAttribute('data-position'))).toBeCloseTo(before + 0.02, 3);
});

test('the difference view is |NPO − baseline| amplified', async ({ page }) => {
  const baseline = await pixels(page, 'image-baseline');
  const npo = await pixels(page, 'image-npo');
  await page.getByTestId('view-difference').click();
  await expect(page.getByTestId('wipe-divider')).toHaveCount(0);
  await expect.poll(async () => (await compareCanvas(page)).width).toBeGreaterThan(32);
  const frame = await compareCanvas(page);
  expect(mismatches(frame, 0, frame.width, (i) => Math.min(255, Math.abs(npo[i] - baseline[i]) * GAIN))).toBe(0);
  expect(new Set(frame.data).size).toBeGreaterThan(4); // not blank: the images differ
});

test('small images scale up without smoothing; a click shows them at 100 % and another fits them again', async ({ page }) => {
  const canvas = page.getByTestId('image-baseline');
  expect(await canvas.evaluate((c) => getComputedStyle(c).imageRendering)).toBe('pixelated');
  const fitted = (await canvas.boundingBox())!.width;
  expect(fitted).toBeGreaterThan(32 * 4);
  await canvas.click();
  await expect.poll(async () => (await canvas.boundingBox())!.width).toBe(32);
  await canvas.click();
  await expect.poll(async () => (await canvas.boundingBox())!.width).toBe(fitted);
  // The compare frame follows the same switch.
  await page.getByTestId('view-wipe').click();
  await page.getByTestId('compare-canvas').click({ position: { x: 5, y: 5 } });
  await expect.poll(async () => (await compareCanvas(page)).width).toBe(32);
});

// History (issue 11, item 4): every generation lands in the strip (newest first, in IndexedDB), survives a reload,
// restores its settings and images on click, and "clear" keeps the starred entries. An entry restores the η switch it
// was made with (issue 31).
import { expect, test } from '@playwright/test';
import { backendOf, differingPixels, openPlayground, pixels, setNumber, waitIdle } from './helpers.ts';

// The page logic here does not depend on the backend: the wasm project covers it (WebGPU on SwiftShader is slow).
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm'));

test('history survives a reload, restores on click, and clear keeps starred entries', async ({ page }, info) => {
  await openPlayground(page, info);
  const items = page.getByTestId('history-item');
  await expect(items).toHaveCount(1);
  await setNumber(page, 'seed', 11);
  await waitIdle(page);
  await expect(items).toHaveCount(2);
  await expect(items.first()).toHaveAttribute('data-seed', '11');
  const seed11 = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await setNumber(page, 'seed', 12);
  await waitIdle(page);
  await expect(items).toHaveCount(3);

  await page.reload();
  await waitIdle(page, info);
  // The reload generated its own images (seed 12 again, from the URL): a fourth entry, newest first.
  await expect(items).toHaveCount(4);
  await expect(items.nth(0)).toHaveAttribute('data-seed', '12');
  await expect(items.nth(2)).toHaveAttribute('data-seed', '11');

  // Clicking an entry restores its settings and its images, without generating.
  await items.nth(2).locator('.thumb').click();
  await expect(page.getByTestId('seed')).toHaveValue('11');
  await expect(page.locator('main')).toHaveAttribute('data-status', 'ready');
  expect(differingPixels(seed11.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  expect(differingPixels(seed11.npo, await pixels(page, 'image-npo'))).toBe(0);
  await page.getByTestId('generate').click(); // the restored images are current: nothing to recompute
  await expect(page.locator('main')).toHaveAttribute('data-status', 'ready');
  await expect(items).toHaveCount(4);

  await items.nth(2).getByTestId('history-star').click();
  await expect(items.nth(2)).toHaveAttribute('data-starred', 'true');
  await page.getByTestId('history-clear').click();
  await expect(items).toHaveCount(1);
  await expect(items.first()).toHaveAttribute('data-seed', '11');
  await page.reload();
  await waitIdle(page, info);
  await expect(items).toHaveCount(2); // the starred one and the reload's own generation
  await expect(items.nth(1)).toHaveAttribute('data-starred', 'true');
});

test('an entry made with η on restores η on, and one made with η off restores it off, with their images', async ({ page }, info) => {
  await openPlayground(page, info); // η off: base vs base+NPO
  const items = page.getByTestId('history-item');
  await expect(items).toHaveCount(1);
  const useEta = page.getByTestId('use-eta');
  const off = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await useEta.click(); // not check(): the box changes when the worker has switched η
  await expect(useEta).toBeChecked();
  await waitIdle(page);
  await expect(items).toHaveCount(2);
  const on = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  expect(differingPixels(off.baseline, on.baseline)).toBeGreaterThan(0);

  for (const [entry, eta, images] of [[1, false, off], [0, true, on]] as const) {
    await items.nth(entry).locator('.thumb').click();
    await expect(useEta).toBeChecked({ checked: eta });
    await expect(page.locator('main')).toHaveAttribute('data-status', 'ready');
    expect(differingPixels(images.baseline, await pixels(page, 'image-baseline'))).toBe(0);
    expect(differingPixels(images.npo, await pixels(page, 'image-npo'))).toBe(0);
    expect(new URL(page.url()).searchParams.get('eta')).toBe(eta ? 'on' : 'off');
    await page.getByTestId('generate').click(); // restored with the η they were made with: nothing to recompute
    await expect(page.locator('main')).toHaveAttribute('data-status', 'ready');
    await expect(items).toHaveCount(2);
  }
});

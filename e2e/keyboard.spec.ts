// Keyboard, labels and layout (issue 11, item 9): Ctrl+Enter generates, Esc cancels, arrow keys move the focused slider
// (and regenerate); every control has an accessible name; the page fits a phone-width window without sideways
// scrolling and puts controls and images side by side on a laptop.
import { expect, test } from '@playwright/test';
import { backendOf, openPlayground, waitIdle } from './helpers.ts';

// The page logic here does not depend on the backend: the wasm project covers it (WebGPU on SwiftShader is slow).
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm'));

test('Ctrl+Enter generates, Esc cancels, arrows move the focused slider', async ({ page }, info) => {
  await openPlayground(page, info);
  await page.getByTestId('seed').fill('5'); // typed, not committed
  await page.keyboard.press('Control+Enter');
  await waitIdle(page);
  await expect(page.getByTestId('status')).toContainText('seed 5');

  const key = await page.getByTestId('image-npo').getAttribute('data-key');
  const alpha = Number(await page.getByTestId('slider-alpha').inputValue()); // the model's default
  await page.getByTestId('slider-alpha').focus();
  await page.keyboard.press('ArrowLeft');
  await expect(page.getByTestId('slider-alpha-value')).toHaveText((alpha - 0.05).toFixed(2));
  await waitIdle(page);
  await expect(page.getByTestId('image-npo')).not.toHaveAttribute('data-key', key!);

  await page.getByTestId('steps').fill('200');
  await page.keyboard.press('Control+Enter');
  await expect(page.locator('main')).toHaveAttribute('data-status', 'generating');
  await page.keyboard.press('Escape');
  await waitIdle(page, info, { steps: 3 }); // the step running at the cancel and at most 2 more
  expect(Number(await page.getByTestId('progress').getAttribute('value'))).toBeLessThan(200);
});

test('every control is labelled, and the layout fits a phone and a laptop', async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await openPlayground(page, info);
  const unnamed = await page.locator('input, select, textarea, button, [role=slider]').evaluateAll((els) =>
    els.filter((e) => {
      const text = (e.getAttribute('aria-label') ?? e.closest('label')?.textContent ?? (e.tagName === 'BUTTON' ? e.textContent : '') ?? '').trim();
      return !text;
    }).map((e) => e.outerHTML.slice(0, 120)));
  expect(unnamed).toEqual([]);
  const controls = (await page.locator('form.controls').boundingBox())!;
  const images = (await page.getByTestId('image-baseline').boundingBox())!;
  expect(images.x).toBeGreaterThan(controls.x + controls.width - 1); // side by side at 1280 px
  await page.setViewportSize({ width: 390, height: 844 });
  await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  const narrow = (await page.getByTestId('image-npo').boundingBox())!;
  expect(narrow.x + narrow.width).toBeLessThanOrEqual(390);
});

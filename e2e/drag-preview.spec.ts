// Speed you can feel (issue 11, item 8): while the β slider is held and dragged, the NPO image shows a reduced-step
// preview of the new value (data-drag-steps) and the baseline, which β does not change, stays; on release the page
// generates the full-step image, equal to what a fresh page makes with those settings. β, because the page opens with
// η off (base vs base+NPO), where β is the slider that changes the NPO image and α has nothing to scale.
import { expect, test } from '@playwright/test';
import { allowFor, backendOf, differingPixels, expectClose, openPlayground, pixels, waitIdle } from './helpers.ts';

// Page logic over the same generate requests on both backends: the wasm project covers it (SwiftShader is slow).
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm'));

test('dragging β previews at reduced steps; release gives the normal full-step image', async ({ page, context }, info) => {
  await openPlayground(page, info, '&beta=2'); // the slider's right end
  const before = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  const slider = page.getByTestId('slider-beta');
  const box = (await slider.boundingBox())!;
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width - 4, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.3, y, { steps: 6 });

  const npo = page.getByTestId('image-npo');
  const preview = await allowFor(page, info, { steps: 2, generations: 2 });
  await expect(npo, preview.because).toHaveAttribute('data-drag-steps', '2', { timeout: preview.ms }); // 6 steps → 2
  await expect(page.getByTestId('image-baseline')).not.toHaveAttribute('data-drag-steps');
  expect(differingPixels(await pixels(page, 'image-npo'), before.npo)).toBeGreaterThan(0);
  expect(differingPixels(await pixels(page, 'image-baseline'), before.baseline)).toBe(0);
  const beta = await slider.inputValue();
  expect(Number(beta)).toBeLessThan(2);
  // Still held: the preview stays; no full generation has started.
  await expect(page.locator('main')).toHaveAttribute('data-status', 'ready');

  await page.mouse.up();
  await waitIdle(page, info);
  await expect(npo).not.toHaveAttribute('data-drag-steps');
  expect(await slider.inputValue()).toBe(beta);
  const released = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  expect(differingPixels(released.baseline, before.baseline)).toBe(0);

  const fresh = await context.newPage();
  await openPlayground(fresh, info, `&beta=${beta}`);
  expectClose(released.npo, await pixels(fresh, 'image-npo'));
  expectClose(released.baseline, await pixels(fresh, 'image-baseline'));
});

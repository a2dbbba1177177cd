// The README's pictures of the playground (docs/playground-*.png), taken in headless Chromium on WASM. Not a test:
// runs only with SCREENSHOTS=1 (`SCREENSHOTS=1 npx playwright test e2e/screenshots.spec.ts --project=wasm`).
import { expect, test } from '@playwright/test';
import { allowFor, openPlayground, setNumber, waitIdle } from './helpers.ts';

test.skip(!process.env.SCREENSHOTS, 'writes docs/ pictures; run with SCREENSHOTS=1');
test.beforeEach(({}, info) => test.skip(info.project.name !== 'wasm', 'pictures come from the wasm project'));

test('docs screenshots', async ({ page }, info) => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await openPlayground(page, info);
  await setNumber(page, 'steps', 20); // the first look: the model's own settings
  await waitIdle(page);
  await page.screenshot({ path: 'docs/screenshot.png' });
  await page.getByTestId('tour-link').click();
  await page.screenshot({ path: 'docs/playground-tour.png' });
  await page.getByTestId('tour-close').click();
  await page.getByTestId('view-wipe').click();
  await page.locator('.view').screenshot({ path: 'docs/playground-wipe.png' });
  await page.getByTestId('view-difference').click();
  await page.locator('.view').screenshot({ path: 'docs/playground-difference.png' });
  await page.getByTestId('view-side-by-side').click();
  const sweep = await allowFor(page, info, { generations: 10 });
  await page.getByTestId('sweep-run').click();
  await expect(page.getByTestId('sweep-best')).toBeVisible({ timeout: sweep.ms });
  await expect(page.getByTestId('sweep-status')).toHaveAttribute('data-state', 'idle', { timeout: sweep.ms });
  await page.locator('.sweep').screenshot({ path: 'docs/playground-sweep.png' });
  await page.getByTestId('pick-npo').click();
  for (const seed of [8, 9]) {
    await setNumber(page, 'seed', seed);
    await waitIdle(page);
    await page.getByTestId(seed === 8 ? 'pick-baseline' : 'pick-npo').click();
  }
  await page.getByTestId('pairs-use').click();
  await page.getByTestId('train-steps').fill('8');
  await page.getByTestId('train-batch').fill('1');
  const training = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: 8, trainBatch: 1 });
  await page.getByTestId('train').click();
  await expect(page.getByTestId('use-trained')).toBeVisible({ timeout: training.ms });
  await page.locator('.train').screenshot({ path: 'docs/playground-train.png' });
  await page.locator('.history').screenshot({ path: 'docs/playground-history.png' });
  await page.setViewportSize({ width: 390, height: 1100 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: 'docs/playground-phone.png' });
});

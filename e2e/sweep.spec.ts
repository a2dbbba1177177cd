// α×β sweep (issue 11, item 2): cells stream in, each equals a single generation with the same settings, the heat
// map's best cell has the highest score, and cancel stops the grid part-way.
import { expect, test, type Page, type TestInfo } from '@playwright/test';
import { allowFor, backendOf, differingPixels, openPlayground, pixels, setSlider, waitIdle } from './helpers.ts';

const cellPixels = (page: Page, alpha: number, beta: number) =>
  page.locator(`[data-testid=sweep-cell][data-alpha="${alpha}"][data-beta="${beta}"] canvas`)
    .evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));

/** Starts a sweep; returns the budget for all of its generations (the baseline and one per cell). */
async function runSweep(page: Page, info: TestInfo, rows: string, columns: string) {
  await page.getByTestId('sweep-rows').fill(rows);
  await page.getByTestId('sweep-columns').fill(columns);
  await page.getByTestId('sweep-run').click();
  await expect(page.getByTestId('sweep-status')).toHaveAttribute('data-state', 'running');
  return allowFor(page, info, { generations: 1 + rows.split(',').length * columns.split(',').length });
}

// On WebGPU too: there each cell re-merges θ_neg on the GPU (a smaller grid, SwiftShader is slow).
test('the grid equals single generations, and the best cell has the highest reward', async ({ page }, info) => {
  const webgpu = backendOf(info) === 'webgpu';
  // α = 1, so that the cell α = 1, β = 0 is the page after β is set to 0; η on, so that α rows (the sweep's default
  // then) are not all alike: without η, θ_neg = θ + β·δ and the rows default to ω (first-look.spec.ts)
  await openPlayground(page, info, '&alpha=1&eta=on');
  await expect(page.getByTestId('sweep-rows-axis')).toHaveValue('alpha');
  const budget = await runSweep(page, info, webgpu ? '1' : '0, 1', '0, 1');
  await expect(page.getByTestId('sweep-status'), budget.because).toHaveAttribute('data-state', 'idle', { timeout: budget.ms });
  const cells = page.getByTestId('sweep-cell');
  await expect(cells).toHaveCount(webgpu ? 2 : 4);
  const scores = await cells.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-score'))));
  expect(scores.every(Number.isFinite)).toBe(true);
  const best = page.getByTestId('sweep-best');
  expect(Number(await best.getAttribute('data-score'))).toBe(Math.max(...scores));
  const outlined = page.locator('[data-testid=sweep-cell].best');
  await expect(outlined).toHaveCount(1);
  expect(await outlined.getAttribute('data-alpha')).toBe(await best.getAttribute('data-alpha'));
  expect(await outlined.getAttribute('data-beta')).toBe(await best.getAttribute('data-beta'));
  expect(Number(await outlined.getAttribute('data-score'))).toBe(Math.max(...scores));

  // The baseline is shown once and is the page's baseline; each cell is the NPO image of a single generation.
  const sweepBaseline = await page.getByTestId('sweep-baseline').evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
  expect(differingPixels(sweepBaseline, await pixels(page, 'image-baseline'))).toBe(0);
  const cell = await cellPixels(page, 1, 0);
  expect(differingPixels(cell, await cellPixels(page, 1, 1))).toBeGreaterThan(0); // cells differ, so equality means something
  await expect(page.getByTestId('slider-alpha-value')).toHaveText('1.00');
  await setSlider(page, 'slider-beta', 0);
  await expect(page.getByTestId('slider-beta-value')).toHaveText('0.00');
  await waitIdle(page);
  expect(differingPixels(cell, await pixels(page, 'image-npo'))).toBe(0);
});

test('cancel stops the sweep part-way, keeping the cells that finished', async ({ page }, info) => {
  test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm');
  await openPlayground(page, info);
  await runSweep(page, info, '0, 0.5, 1', '0, 0.5, 1');
  const firstCell = await allowFor(page, info, { generations: 2 }); // the baseline, then the first cell
  await expect(page.locator('[data-testid=sweep-cell][data-score]').first(), firstCell.because).toBeAttached({ timeout: firstCell.ms });
  await page.getByTestId('sweep-cancel').click();
  await expect(page.getByTestId('sweep-status')).toHaveAttribute('data-state', 'idle');
  await expect(page.getByTestId('sweep-status')).toHaveText('sweep cancelled');
  const done = await page.locator('[data-testid=sweep-cell][data-score]').count();
  expect(done).toBeGreaterThanOrEqual(1);
  expect(done).toBeLessThan(9);
  await expect(page.getByTestId('sweep-cell')).toHaveCount(9);
});

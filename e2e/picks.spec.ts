// Label pairs by clicking (issue 11, item 5) and the training panel (item 6): picks (button or key) become a
// pairs.json that src/train/pairs.ts accepts, with the picked image as the winner; the picks train a δ at once, the
// chart draws one point per step with time per step and ETA, and the trained δ is previewed on the current prompt.
import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { parsePairs } from '../src/train/pairs.ts';
import { rgbaToChw } from '../src/share/image.ts';
import { allowFor, backendOf, canvasPixels, differingPixels, expectClose, openPlayground, pixels, setNumber, waitIdle } from './helpers.ts';

// The page logic here does not depend on the backend: the wasm project covers it (WebGPU on SwiftShader is slow).
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm'));

test('picks become pairs.json, train a δ at once, and the chart follows the steps', async ({ page }, info) => {
  await openPlayground(page, info);
  const prompt = await page.getByTestId('prompt').inputValue();
  const first = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await page.getByTestId('pick-npo').click();
  await expect(page.getByTestId('pairs-count')).toHaveAttribute('data-count', '1');
  await expect(page.getByTestId('pick-npo')).toHaveAttribute('aria-pressed', 'true');
  // Changing one's mind about the same two images replaces the pick.
  await page.getByTestId('pick-baseline').click();
  await expect(page.getByTestId('pairs-count')).toHaveAttribute('data-count', '1');
  await page.getByTestId('pick-npo').click();

  await setNumber(page, 'seed', 5);
  await waitIdle(page);
  const second = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await page.locator('h1').click(); // keys pick outside text fields
  await page.keyboard.press('1');
  await expect(page.getByTestId('pairs-count')).toHaveAttribute('data-count', '2');
  await expect(page.getByTestId('pairs-count')).toHaveText('2 picked pairs');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('pairs-export').click()]);
  expect(download.suggestedFilename()).toBe('pairs.json');
  const pairs = parsePairs(readFileSync((await download.path())!, 'utf8'), { width: 32, height: 32 });
  expect(pairs).toHaveLength(2);
  const chw = (rgba: number[]) => rgbaToChw(Uint8ClampedArray.from(rgba), 32, 32);
  expect(pairs[0]).toEqual({ prompt, winner: chw(first.npo), loser: chw(first.baseline) });
  expect(pairs[1]).toEqual({ prompt, winner: chw(second.baseline), loser: chw(second.npo) });

  // Train on the picks at once (NPO: reversed), two small steps.
  await page.getByTestId('pairs-use').click();
  await expect(page.getByTestId('train-status')).toHaveText('2 picked pairs loaded');
  await page.getByTestId('train-steps').fill('2');
  await page.getByTestId('train-batch').fill('1');
  await page.getByTestId('train-rank').fill('2');
  const training = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: 2, trainBatch: 1 });
  await page.getByTestId('train').click();
  await expect(page.getByTestId('use-trained'), training.because).toBeVisible({ timeout: training.ms });
  const chart = page.getByTestId('train-chart');
  await expect(chart).toHaveAttribute('data-points', '2');
  const points = (await chart.locator('polyline.loss').getAttribute('points'))!.split(' ');
  expect(points).toHaveLength(2);
  const xs = points.map((p) => Number(p.split(',')[0]));
  expect(xs[1]).toBeGreaterThan(xs[0]);
  await expect(chart.locator('polyline.accuracy')).toHaveAttribute('points', /\S+ \S+/);
  await expect(page.getByTestId('train-pace')).toContainText(/s\/step · ETA 0 s/);

  // Item 6: when training ends the trained δ is previewed on the current prompt and seed, nothing swapped yet:
  // "before" is the NPO image shown (the same settings and δ), "after" what "Use as δ" then generates.
  const effect = page.getByTestId('train-effect');
  const previewing = await allowFor(page, info, { generations: 2 });
  await expect(effect, previewing.because).toBeVisible({ timeout: previewing.ms });
  await expect(effect).toHaveAttribute('data-seed', '5');
  await expect(effect).toHaveAttribute('data-kind', 'npo');
  const [before, after] = [await canvasPixels(page, 'train-effect-before'), await canvasPixels(page, 'train-effect-after')];
  // The page made its NPO image in one batch with the baseline, the preview alone: WASM kernels may round a level apart.
  expectClose(before, second.npo);
  expect(differingPixels(before, after)).toBeGreaterThan(0);
  expect(differingPixels(await pixels(page, 'image-npo'), second.npo)).toBe(0); // the preview changed nothing on the page
  await page.getByTestId('use-trained').click();
  await expect(page.getByTestId('train-message')).toContainText('as δ');
  await waitIdle(page, info);
  expectClose(await pixels(page, 'image-npo'), after);
  expect(differingPixels(await pixels(page, 'image-baseline'), second.baseline)).toBe(0);
});

// Item 5's "or of two seeds": the NPO image at the page's seed and at seed + 1, each equal to the page's own
// generation with those settings; picking one adds a pair to the same set, which src/train/pairs.ts accepts.
test('picks between two seeds of the NPO image join the pairs set', async ({ page }, info) => {
  await openPlayground(page, info);
  const prompt = await page.getByTestId('prompt').inputValue();
  const seed = Number(await page.getByTestId('seed').inputValue());
  const npoAtSeed = await pixels(page, 'image-npo');
  await page.getByTestId('seeds-run').click();
  const both = await allowFor(page, info, { generations: 2 });
  await expect(page.getByTestId('seeds-image-b'), both.because).toBeVisible({ timeout: both.ms });
  await expect(page.getByTestId('seeds-status')).toHaveAttribute('data-state', 'idle');
  await expect(page.getByTestId('seeds-image-a')).toHaveAttribute('data-seed', String(seed));
  await expect(page.getByTestId('seeds-image-b')).toHaveAttribute('data-seed', String(seed + 1));
  const [a, b] = [await canvasPixels(page, 'seeds-image-a'), await canvasPixels(page, 'seeds-image-b')];
  expectClose(a, npoAtSeed);
  expect(differingPixels(a, b)).toBeGreaterThan(0);

  await page.getByTestId('seeds-pick-b').click();
  await expect(page.getByTestId('seeds-pick-b')).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByTestId('pairs-count')).toHaveAttribute('data-count', '1');
  await page.getByTestId('seeds-pick-a').click(); // a change of mind replaces the pick
  await expect(page.getByTestId('pairs-count')).toHaveAttribute('data-count', '1');
  await page.getByTestId('pick-baseline').click(); // the baseline-vs-NPO pick joins the same set
  await expect(page.getByTestId('pairs-count')).toHaveAttribute('data-count', '2');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('pairs-export').click()]);
  const pairs = parsePairs(readFileSync((await download.path())!, 'utf8'), { width: 32, height: 32 });
  const chw = (rgba: number[]) => rgbaToChw(Uint8ClampedArray.from(rgba), 32, 32);
  expect(pairs).toHaveLength(2);
  expect(pairs[0]).toEqual({ prompt, winner: chw(a), loser: chw(b) });

  // The second seed's image is what the page itself generates at that seed.
  await setNumber(page, 'seed', seed + 1);
  await waitIdle(page, info);
  expectClose(await pixels(page, 'image-npo'), b);
});

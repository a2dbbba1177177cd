// The walking skeleton, end to end in headless Chromium, once per backend (WebGPU via SwiftShader, WASM).
// Both backends, because each test here runs the backend's own code: on WebGPU our merge kernels re-merge θ_neg in
// place when α moves, the GPU-resident loop applies each scheduler's coefficients and stops on cancel; on WASM the
// CPU merge and loop do. On WebGPU, SwiftShader takes ~20 s per UNet call of the embedded model on 2 cores, so only
// the test tagged @embedded uses it there; the others, which are about the page and that code path rather than the
// model's pictures, use the tiny fixture model (same graph shape and LoRA sites, 16×16; gpu-helpers.ts) with
// prediction_type 'sample', which keeps a random model's pixels unsaturated so that changes show.
// The tests share one page (opening it is most of their time; sharedPageTest in helpers.ts): each starts from the
// settings the page opened with, restored after whatever the test before it changed. The page opens with η on
// (`eta=on`): α scales η on the negative branch and does nothing without it; how the page opens by default (η off on
// the embedded model) is first-look.spec.ts's.
import { expect, type Page, type TestInfo } from '@playwright/test';
import {
  backendOf, colourCount, differingPixels, isBlank, openPlayground, pixels, readSettings, restoreSettings, setNumber, setSlider,
  sharedPageTest as test, stepsOf, waitIdle, type Settings,
} from './helpers.ts';
import { serveTinyModel } from './gpu-helpers.ts';

/** What the shared page opened with, to restore before each test. */
let opened: Settings | undefined;
const ETA_ON = '&eta=on';

/** Opens the shared page (the tiny model on WebGPU) if no test has yet, else restores its opening settings. */
async function playground(page: Page, info: TestInfo): Promise<Page> {
  if (isBlank(page)) {
    await openPlayground(page, info, `${ETA_ON}${backendOf(info) === 'webgpu' ? `&model=${await serveTinyModel(page, { predictionType: 'sample' })}` : ''}`);
    opened = await readSettings(page);
  } else await restoreSettings(page, info, opened!);
  return page;
}

test('shows both images on open and reports the backend', { tag: '@embedded' }, async ({ page: own, sharedPage }, info) => {
  // The embedded model, on a page opened for this test; on WASM that is the shared page when this test opens it.
  const page = backendOf(info) === 'wasm' && isBlank(sharedPage) ? sharedPage : own;
  await openPlayground(page, info, ETA_ON);
  if (page === sharedPage) opened = await readSettings(page);
  await expect(page.getByTestId('backend')).toHaveText(backendOf(info));
  await expect(page.getByTestId('backend-reason')).toContainText(`asked for (?backend=${backendOf(info)})`); // used even on a software adapter
  await expect(page.getByTestId('steps')).toHaveValue(String(stepsOf(info)));
  expect(colourCount(await pixels(page, 'image-baseline'))).toBeGreaterThan(4); // a drawn image, not a blank canvas
  expect(colourCount(await pixels(page, 'image-npo'))).toBeGreaterThan(4);
});

test('same seed gives identical images, another seed different ones', async ({ sharedPage }, info) => {
  const page = await playground(sharedPage, info);
  await setNumber(page, 'seed', 7);
  await waitIdle(page);
  const first = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await setNumber(page, 'seed', 8);
  await waitIdle(page);
  expect(differingPixels(first.baseline, await pixels(page, 'image-baseline'))).toBeGreaterThan(100);
  await setNumber(page, 'seed', 7);
  await waitIdle(page);
  expect(differingPixels(first.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  expect(differingPixels(first.npo, await pixels(page, 'image-npo'))).toBe(0);
});

test('moving α changes the NPO image and leaves the baseline pixel-identical', async ({ sharedPage }, info) => {
  const page = await playground(sharedPage, info);
  const before = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  const baselineKey = await page.getByTestId('image-baseline').getAttribute('data-key');
  await setSlider(page, 'slider-alpha', 0.2);
  await expect(page.getByTestId('slider-alpha-value')).toHaveText('0.20');
  await waitIdle(page);
  expect(differingPixels(before.npo, await pixels(page, 'image-npo'))).toBeGreaterThan(10);
  expect(differingPixels(before.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  // The baseline was not recomputed at all, not merely recomputed to the same pixels.
  expect(await page.getByTestId('image-baseline').getAttribute('data-key')).toBe(baselineKey);
});

test('η off compares base with base+NPO: the baseline changes, α stops mattering, and η back restores the pixels', async ({ sharedPage }, info) => {
  const page = await playground(sharedPage, info);
  const withEta = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  const useEta = page.getByTestId('use-eta');
  await expect(useEta).toBeChecked();
  await useEta.click();
  await expect(useEta).not.toBeChecked(); // the box follows the worker's 'lora-used', on which the page regenerates
  await waitIdle(page);
  const off = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  expect(differingPixels(withEta.baseline, off.baseline)).toBeGreaterThan(10); // θ_pos = θ now, not θ + η
  await setSlider(page, 'slider-alpha', 0.2); // θ_neg = θ + α·0 + β·δ: α has nothing to scale
  await waitIdle(page);
  expect(differingPixels(off.npo, await pixels(page, 'image-npo'))).toBe(0);
  await setSlider(page, 'slider-alpha', Number(opened!['slider-alpha']));
  await waitIdle(page);
  await useEta.click();
  await expect(useEta).toBeChecked();
  await waitIdle(page);
  expect(differingPixels(withEta.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  expect(differingPixels(withEta.npo, await pixels(page, 'image-npo'))).toBe(0);
});

test('moving ω recomputes both images', async ({ sharedPage }, info) => {
  const page = await playground(sharedPage, info);
  const before = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await setSlider(page, 'slider-omega', 1);
  await waitIdle(page);
  expect(differingPixels(before.baseline, await pixels(page, 'image-baseline'))).toBeGreaterThan(10);
  expect(differingPixels(before.npo, await pixels(page, 'image-npo'))).toBeGreaterThan(10);
});

test('the page stays responsive while sampling, and cancel stops it', async ({ sharedPage }, info) => {
  const page = await playground(sharedPage, info);
  await setNumber(page, 'steps', 200);
  await expect(page.locator('main')).toHaveAttribute('data-status', 'generating');
  const before = await page.getByTestId('image-npo').getAttribute('data-key');
  // A click and typing are handled while the worker samples.
  await page.getByTestId('negative-prompt').click();
  await page.getByTestId('negative-prompt').fill('blurry');
  await expect(page.getByTestId('negative-prompt')).toHaveValue('blurry');
  await expect(page.locator('main')).toHaveAttribute('data-status', 'generating');
  // The progress shown when the click is dispatched, read in the page: Playwright's own click takes tens of ms,
  // several steps of the embedded model, so a value read before calling click() says nothing about the cancel.
  const cancel = page.getByTestId('cancel');
  await cancel.evaluate((button) => button.addEventListener('click', () => {
    button.dataset.progressAtClick = document.querySelector('[data-testid="progress"]')!.getAttribute('value')!;
  }, { capture: true, once: true }));
  await cancel.click();
  const atCancel = Number(await cancel.getAttribute('data-progress-at-click'));
  // At most 3 more steps: the one the worker is running, the one whose progress message was in flight, and one
  // begun before the worker read the cancel (not the 200 asked for).
  await waitIdle(page, info, { steps: 3 });
  const progress = Number(await page.getByTestId('progress').getAttribute('value'));
  expect(progress).toBeLessThan(200);
  expect(progress, 'steps finished after the cancel').toBeLessThanOrEqual(atCancel + 3);
  expect(await page.getByTestId('image-npo').getAttribute('data-key')).toBe(before);
});

test('changing the scheduler changes the images', async ({ sharedPage }, info) => {
  const page = await playground(sharedPage, info);
  const before = await pixels(page, 'image-baseline');
  await page.getByTestId('scheduler').selectOption('euler');
  await waitIdle(page);
  await expect(page.getByTestId('scheduler')).toHaveValue('euler');
  expect(differingPixels(before, await pixels(page, 'image-baseline'))).toBeGreaterThan(10);
});

// Save and share (issue 11, item 7): the URL always holds the settings and "copy link" copies it; a downloaded PNG
// has the image's pixels and an A1111 `parameters` chunk that parses back to the same settings; dropping that PNG on
// the page restores the settings and so the images. A PNG without the chunk is refused with the reason. The η switch
// is one of the settings (issue 31): links and PNGs reopen with the η state they were made with.
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { readPngText } from '../src/share/png-text.ts';
import { parseParameters } from '../src/share/parameters.ts';
import { etaFromQuery, paramsFromQuery } from '../src/share/settings-url.ts';
import { encodePng } from '../src/world/png.ts';
import { backendOf, differingPixels, dropFiles, openPlayground, pixels, setNumber, setSlider, waitIdle } from './helpers.ts';

// The page logic here does not depend on the backend: the wasm project covers it (WebGPU on SwiftShader is slow).
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm'));

/** Drops a PNG on the page the way a browser does. */
const dropFile = (page: Page, bytes: Uint8Array, name: string) => dropFiles(page.locator('main'), [{ name, bytes, type: 'image/png' }]);

const settingsOf = async (page: Page) => ({
  prompt: await page.getByTestId('prompt').inputValue(),
  negativePrompt: await page.getByTestId('negative-prompt').inputValue(),
  seed: Number(await page.getByTestId('seed').inputValue()),
  steps: Number(await page.getByTestId('steps').inputValue()),
  omega: Number(await page.getByTestId('slider-omega').inputValue()),
  alpha: Number(await page.getByTestId('slider-alpha').inputValue()),
  beta: Number(await page.getByTestId('slider-beta').inputValue()),
  scheduler: await page.getByTestId('scheduler').inputValue(),
});

/** Turns the η switch and waits for the images made with it. */
async function switchEta(page: Page, on: boolean) {
  const box = page.getByTestId('use-eta');
  if ((await box.isChecked()) !== on) await box.click(); // not check(): the box changes when the worker has switched
  await expect(box).toBeChecked({ checked: on }); // and the page regenerates then
  await waitIdle(page);
}

test('the URL follows the settings and copy-link copies it', async ({ page, context }, info) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await openPlayground(page, info);
  await setNumber(page, 'seed', 9);
  await setSlider(page, 'slider-omega', 2.5);
  await waitIdle(page);
  const query = new URL(page.url()).searchParams;
  expect(query.get('backend')).toBe(info.project.metadata.backend);
  expect(paramsFromQuery(query)).toEqual(await settingsOf(page));
  expect(etaFromQuery(query)).toBe(false); // the page opened with η off
  await page.getByTestId('copy-link').click();
  await expect(page.getByTestId('copy-link')).toHaveText('Link copied');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(page.url());
  // The link reproduces the images.
  const npo = await pixels(page, 'image-npo');
  const again = await page.context().newPage();
  await again.goto(page.url());
  await waitIdle(again, info);
  await expect(again.getByTestId('seed')).toHaveValue('9');
  expect(differingPixels(npo, await pixels(again, 'image-npo'))).toBe(0);

  // With η on, the link says so, and reopens with η on and its images.
  await switchEta(page, true);
  expect(etaFromQuery(new URL(page.url()).searchParams)).toBe(true);
  const withEta = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  expect(differingPixels(withEta.baseline, await pixels(again, 'image-baseline'))).toBeGreaterThan(0); // η changes the baseline
  const third = await page.context().newPage();
  await third.goto(page.url());
  await waitIdle(third, info);
  await expect(third.getByTestId('use-eta')).toBeChecked();
  expect(differingPixels(withEta.baseline, await pixels(third, 'image-baseline'))).toBe(0);
  expect(differingPixels(withEta.npo, await pixels(third, 'image-npo'))).toBe(0);
});

test('a downloaded PNG carries its pixels and settings, and dropping it restores them', async ({ page }, info) => {
  await openPlayground(page, info);
  await switchEta(page, true); // α acts only with η on
  await setSlider(page, 'slider-alpha', 0.35);
  await waitIdle(page);
  const settings = await settingsOf(page);
  const npo = await pixels(page, 'image-npo');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-npo').click()]);
  expect(download.suggestedFilename()).toBe(`npo-${settings.seed}-with-npo.png`);
  const png = new Uint8Array(readFileSync((await download.path())!));
  const text = (await readPngText(png)).get('parameters')!;
  expect(text.split('\n').at(-1)).toContain(`CFG scale: ${settings.omega + 1}`);
  const parsed = parseParameters(text);
  expect(parsed.params).toEqual(settings);
  expect(parsed.eta).toBe(true);
  expect(parsed.size).toEqual({ width: 32, height: 32 });
  expect(parsed.model).toBe(await page.getByTestId('model-name').textContent());
  // The PNG's pixels are the canvas's (decoded by the browser).
  const decoded = await page.evaluate(async (data) => {
    const bitmap = await createImageBitmap(new Blob([new Uint8Array(data)], { type: 'image/png' }));
    const c = new OffscreenCanvas(bitmap.width, bitmap.height);
    c.getContext('2d')!.drawImage(bitmap, 0, 0);
    return Array.from(c.getContext('2d')!.getImageData(0, 0, bitmap.width, bitmap.height).data);
  }, Array.from(png));
  expect(differingPixels(decoded, npo)).toBe(0);

  // Other settings and η off, then the dropped PNG brings everything back.
  await setNumber(page, 'seed', 4321);
  await setSlider(page, 'slider-alpha', 0.9);
  await waitIdle(page);
  await switchEta(page, false);
  expect(differingPixels(npo, await pixels(page, 'image-npo'))).toBeGreaterThan(0);
  await dropFile(page, png, 'shared.png');
  await expect(page.getByTestId('notice')).toContainText('settings restored from shared.png');
  await waitIdle(page);
  expect(await settingsOf(page)).toEqual(settings);
  await expect(page.getByTestId('use-eta')).toBeChecked();
  expect(differingPixels(npo, await pixels(page, 'image-npo'))).toBe(0);

  // A PNG without settings is refused with the reason, and the settings stay.
  await dropFile(page, encodePng(new Float32Array(3 * 4 * 4), 4, 4), 'plain.png');
  await expect(page.getByTestId('error')).toContainText('cannot restore settings from plain.png: it has no "parameters" text chunk');
  expect(await settingsOf(page)).toEqual(settings);
});

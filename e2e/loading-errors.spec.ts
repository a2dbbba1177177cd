// Bad model files and an unusable backend give a clear message on the page instead of a blank screen.
import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { allowFor, backendOf, differingPixels, openPlayground, pixels } from './helpers.ts';

const manifest = JSON.parse(readFileSync('models/manifest.json', 'utf8'));

// The file checks run before any backend starts (both tests load on WASM), so they run in the wasm project only.
test.describe('files checked before a backend starts', () => {
  test.beforeEach(({}, info) => test.skip(backendOf(info) !== 'wasm', 'backend-independent: runs once, in the wasm project'));

  test('an HTML page served as the manifest is reported', async ({ page }, info) => {
    await page.route('**/models/manifest.json', (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><html><body>404</body></html>' }));
    await page.goto('/?backend=wasm');
    const budget = await allowFor(page, info, { load: true, steps: 0, generations: 0 });
    await expect(page.getByTestId('error'), budget.because).toContainText('not JSON', { timeout: budget.ms });
  });

  test('a corrupted UNet file is caught by its hash', async ({ page }, info) => {
    await page.route('**/models/unet.onnx', async (route) => {
      const body = Buffer.from(readFileSync('models/unet.onnx'));
      body[100] ^= 0xff;
      await route.fulfill({ body, contentType: 'application/octet-stream' });
    });
    await page.goto('/?backend=wasm');
    const budget = await allowFor(page, info, { load: true, steps: 0, generations: 0 });
    await expect(page.getByTestId('error'), budget.because).toContainText('unet.onnx: SHA-256', { timeout: budget.ms });
  });
});

// Both backends: on WebGPU the zero LoRAs go through our merge kernels and the GPU loop, on WASM through the CPU's.
test('with η = δ = 0 and α = β = 0 both images are identical', async ({ page }, info) => {
  await page.route('**/models/manifest.json', (route) => route.fulfill({ json: { ...manifest, loras: {} } }));
  await openPlayground(page, info, '&alpha=0&beta=0');
  await expect(page.getByTestId('slider-alpha-value')).toHaveText('0.00');
  await expect(page.getByTestId('slider-beta-value')).toHaveText('0.00');
  expect(differingPixels(await pixels(page, 'image-baseline'), await pixels(page, 'image-npo'))).toBe(0);
});

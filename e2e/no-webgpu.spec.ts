// Chromium started without --enable-unsafe-webgpu on a machine with no GPU has no WebGPU adapter.
import { expect, test } from '@playwright/test';
import { allowFor } from './helpers.ts';

test('forcing WebGPU where there is none shows why', async ({ page }) => {
  await page.goto('/?backend=webgpu');
  await expect(page.getByTestId('error')).toContainText('WebGPU was requested');
  await expect(page.getByTestId('backend')).toHaveText('failed');
});

test('auto falls back to WASM and says why', async ({ page }, info) => {
  await page.goto('/');
  const budget = await allowFor(page, info, { load: true, steps: 0, generations: 0 });
  await expect(page.getByTestId('backend'), budget.because).toHaveText('wasm', { timeout: budget.ms });
  await expect(page.getByTestId('backend-reason')).toContainText('WebGPU unavailable');
});

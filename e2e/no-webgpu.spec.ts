// Chromium started without --enable-unsafe-webgpu on a machine with no GPU has no WebGPU adapter.
import { expect, test } from '@playwright/test';

test('forcing WebGPU where there is none shows why', async ({ page }) => {
  await page.goto('/?backend=webgpu');
  await expect(page.getByTestId('error')).toContainText('WebGPU was requested');
  await expect(page.getByTestId('backend')).toHaveText('failed');
});

test('auto falls back to WASM with a notice', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('backend')).toHaveText('wasm');
  await expect(page.getByTestId('notice')).toContainText('WebGPU unavailable');
});

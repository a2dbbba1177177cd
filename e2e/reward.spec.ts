// Reward in the page (issue 11, item 3): each image shows the embedded world's total score with the four components
// in its title, equal to src/reward's score of the very pixels on the canvas; the NPO − baseline difference is marked.
import { expect, test } from '@playwright/test';
import { scoreImage } from '../src/reward/index.ts';
import { rgbaToChw } from '../src/share/image.ts';
import { backendOf, openPlayground, pixels } from './helpers.ts';

// The page logic here does not depend on the backend: the wasm project covers it (WebGPU on SwiftShader is slow).
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent page logic; covered on wasm'));

test('each image shows its reward and components; NPO − baseline is highlighted with its sign', async ({ page }, info) => {
  await openPlayground(page, info);
  const prompt = await page.getByTestId('prompt').inputValue();
  const totals: Record<string, number> = {};
  for (const kind of ['baseline', 'npo'] as const) {
    const ref = scoreImage(rgbaToChw(Uint8ClampedArray.from(await pixels(page, `image-${kind}`)), 32, 32), prompt);
    const score = page.getByTestId(`score-${kind}`);
    totals[kind] = Number(await score.getAttribute('data-score'));
    expect(Math.abs(totals[kind] - ref.total)).toBeLessThan(1e-9);
    await expect(score).toContainText(ref.total.toFixed(3));
    const title = (await score.getAttribute('title'))!;
    for (const k of ['fidelity', 'detail', 'colour', 'composition'] as const) expect(title).toContain(`${k} ${ref[k].toFixed(3)}`);
  }
  const diff = totals.npo - totals.baseline;
  const marker = page.getByTestId('score-diff');
  await expect(marker).toContainText(`${diff >= 0 ? '+' : '−'}${Math.abs(diff).toFixed(3)}`);
  if (Math.abs(diff) > 0) await expect(marker).toHaveClass(diff > 0 ? 'up' : 'down');
});

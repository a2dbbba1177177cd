// WebGPU and WASM give the same images for the same settings (issue 6): the embedded model, 2 DDIM steps, both
// images. WebGPU runs our merge kernels, the GPU-resident loop and ORT's WebGPU EP; WASM the CPU merge and loop.
// Tolerance: every RGB byte within 2 of 255 and at least 99% of bytes identical (float32 kernels sum in different
// orders; a difference of 1e-5 can flip a rounding to 8 bits).
import { expect, test } from '@playwright/test';
import { pixels, waitIdle } from './helpers.ts';
import { recordWorkerEvents, workerEvents } from './gpu-helpers.ts';

test.skip(({ browserName }, info) => info.project.name !== 'webgpu', 'needs --enable-unsafe-webgpu; runs both backends itself');

async function render(page: import('@playwright/test').Page, backend: 'webgpu' | 'wasm') {
  await recordWorkerEvents(page);
  await page.goto(`/?backend=${backend}&steps=2&seed=11&alpha=0.6`);
  await expect(page.getByTestId('backend')).toHaveText(backend);
  await waitIdle(page);
  return { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo'), events: await workerEvents(page) };
}

test('WebGPU and WASM produce the same images', async ({ browser }) => {
  test.setTimeout(300_000);
  const wasm = await render(await browser.newPage(), 'wasm');
  const gpu = await render(await browser.newPage(), 'webgpu');
  for (const kind of ['baseline', 'npo'] as const) {
    const [a, b] = [wasm[kind], gpu[kind]];
    const rgb = a.map((v, i) => (i % 4 === 3 ? 0 : Math.abs(v - b[i])));
    expect(Math.max(...rgb), `${kind}: largest byte difference`).toBeLessThanOrEqual(2);
    expect(rgb.filter((d) => d > 0).length / ((a.length * 3) / 4), `${kind}: share of differing bytes`).toBeLessThan(0.01);
  }
  const done = gpu.events.filter((e) => e.type === 'done').at(-1);
  expect(done && done.type === 'done' && done.stats).toMatchObject({ loop: 'gpu', readBacks: 2 });
});

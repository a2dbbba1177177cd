// Shared e2e helpers: open the page on a backend, wait for idle, read a canvas's pixels.
import { expect, type Page, type TestInfo } from '@playwright/test';

export const backendOf = (info: TestInfo) => String(info.project.metadata.backend ?? 'auto');
/** Sampling steps per generation: WebGPU on SwiftShader takes seconds per UNet call, so it gets fewer. */
export const stepsOf = (info: TestInfo) => Number(info.project.metadata.steps ?? 6);

/** Opens the page on the project's backend with its step count in the URL (page settings can come from the URL). */
export async function openPlayground(page: Page, info: TestInfo, query = '') {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`/?backend=${backendOf(info)}&steps=${stepsOf(info)}${query}`);
  await expect(page.getByTestId('backend')).toHaveText(backendOf(info));
  await waitIdle(page);
  return errors;
}

/** Waits until no generation runs and the last one has delivered its images. */
export async function waitIdle(page: Page) {
  await expect(page.locator('main')).toHaveAttribute('data-status', 'ready');
}

export async function pixels(page: Page, testId: 'image-baseline' | 'image-npo'): Promise<number[]> {
  return page.getByTestId(testId).evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
}

/** Distinct RGB colours: a drawn image has many, a blank canvas one. */
export const colourCount = (rgba: number[]) => new Set(Array.from({ length: rgba.length / 4 }, (_, i) => rgba.slice(i * 4, i * 4 + 3).join())).size;

export const differingPixels = (a: number[], b: number[]) => a.reduce((n, v, i) => n + (v !== b[i] ? 1 : 0), 0);

/** Sets a number field and commits it (the page regenerates on Enter). */
export async function setNumber(page: Page, testId: string, value: number) {
  const field = page.getByTestId(testId);
  await field.fill(String(value));
  await field.press('Enter');
}

/** Moves a slider to `value` and releases it (fires input and change, as a drag does). */
export async function setSlider(page: Page, testId: string, value: number) {
  await page.getByTestId(testId).fill(String(value));
}

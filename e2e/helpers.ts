// Shared e2e helpers: open the page on a backend, wait for idle with a budget sized to the work, read a canvas's
// pixels. Budgets come from the calibration measured at the start of the run (calibration.ts, global-setup.ts).
import { expect, test, type Locator, type Page, type TestInfo, type WorkerInfo } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { budgetMs, describeCalibration, expectedMs, loadFactor, type Backend, type Work } from './calibration.ts';

export const backendOf = (info: TestInfo | WorkerInfo) => String(info.project.metadata.backend ?? 'auto');
/** Sampling steps per generation: WebGPU on SwiftShader takes seconds per UNet call, so it gets fewer. */
export const stepsOf = (info: TestInfo | WorkerInfo) => Number(info.project.metadata.steps ?? 6);

/** Opens the page on the project's backend with its step count in the URL (page settings can come from the URL). */
export async function openPlayground(page: Page, info: TestInfo, query = '') {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`/?backend=${backendOf(info)}&steps=${stepsOf(info)}${query}`);
  // One budget for the whole open: loading the model, then the first generation.
  const budget = await allowFor(page, info, { load: true });
  const deadline = Date.now() + budget.ms;
  await expect(page.getByTestId('backend'), budget.because).toHaveText(backendOf(info), { timeout: budget.ms });
  await expect(page.locator('main'), budget.because).toHaveAttribute('data-status', 'ready', { timeout: Math.max(1, deadline - Date.now()) });
  return errors;
}

/**
 * `test` with a `sharedPage`: one page per spec file, kept from test to test of that spec (a fresh browser context, so
 * fresh storage, when the spec's first test asks for it; blank until a test opens it). Opening the page is most of a
 * short test's time (WebGPU on SwiftShader compiles ORT's shaders on every visit), so specs whose tests each change a
 * setting or two share one; each test then first restores what it needs (restoreSettings). Per spec, not per
 * Playwright worker: one worker runs several specs in a row, and a spec must not find the page another one left. When
 * the next spec starts, the previous spec's page is closed. A failed test ends its worker, so the tests after it get a
 * new context and page, never a page left in a failed state.
 */
export const sharedPageTest = test.extend<{ sharedPage: Page }, { sharedPages: Map<string, Page> }>({
  sharedPages: [async ({}, use) => {
    const pages = new Map<string, Page>();
    await use(pages);
    for (const page of pages.values()) await page.context().close();
  }, { scope: 'worker' }],
  sharedPage: async ({ browser, sharedPages }, use, info) => {
    let page = sharedPages.get(info.file);
    if (!page) {
      for (const [file, other] of sharedPages) {
        await other.context().close();
        sharedPages.delete(file);
      }
      page = await (await browser.newContext({ baseURL: info.project.use.baseURL, storageState: info.project.use.storageState })).newPage();
      sharedPages.set(info.file, page);
    }
    await use(page);
  },
});

/** A shared page that no test has opened yet. */
export const isBlank = (page: Page) => page.url() === 'about:blank';

/** The settings the page's controls show, by data-testid (seed, steps, scheduler, prompts, sliders). */
export type Settings = Record<'seed' | 'steps' | 'scheduler' | 'prompt' | 'negative-prompt' | 'slider-omega' | 'slider-alpha' | 'slider-beta', string>;

export async function readSettings(page: Page): Promise<Settings> {
  const ids = ['seed', 'steps', 'scheduler', 'prompt', 'negative-prompt', 'slider-omega', 'slider-alpha', 'slider-beta'] as const;
  const values = await Promise.all(ids.map((id) => page.getByTestId(id).inputValue()));
  return Object.fromEntries(ids.map((id, i) => [id, values[i]])) as Settings;
}

/**
 * Waits for the running generation, sets every control that differs from `settings` (the texts first, which do not
 * generate, then the sliders and the scheduler, then steps and seed, whose commits do) and waits for the images of
 * the restored settings: a test on a shared page then starts from them whatever the test before it changed.
 */
export async function restoreSettings(page: Page, info: TestInfo, settings: Settings) {
  await waitIdle(page, info);
  const now = await readSettings(page);
  for (const id of ['prompt', 'negative-prompt'] as const) if (now[id] !== settings[id]) await page.getByTestId(id).fill(settings[id]);
  for (const id of ['slider-omega', 'slider-alpha', 'slider-beta'] as const) if (now[id] !== settings[id]) await setSlider(page, id, Number(settings[id]));
  if (now.scheduler !== settings.scheduler) await page.getByTestId('scheduler').selectOption(settings.scheduler);
  for (const id of ['steps', 'seed'] as const) if (now[id] !== settings[id]) await setNumber(page, id, Number(settings[id]));
  // Generate regenerates only what the shown images do not match (after a cancel, say, nothing): it covers texts
  // restored without a commit after them.
  await page.getByTestId('generate').click();
  await waitIdle(page, info);
  expect(await readSettings(page)).toEqual(settings);
}

/**
 * Waits until no generation runs and the last one has delivered its images. The budget is sized to the work: by
 * default one generation of the page's current step count on the page's backend (plus the first load when the page
 * is still loading); `work` says more (several generations, training steps, a known step count). The test's own
 * timeout grows by the same budget, so a test that waits for several generations is not cut short either.
 */
export async function waitIdle(page: Page, info?: TestInfo, work: Partial<Work> = {}) {
  const budget = await allowFor(page, info, work);
  await expect(page.locator('main'), budget.because).toHaveAttribute('data-status', 'ready', { timeout: budget.ms });
}

/** The budget for `work` on this page, with the reason shown if it runs out; extends the running test's timeout. */
export async function allowFor(page: Page, info: TestInfo | undefined, work: Partial<Work>) {
  const state = await pageState(page);
  // The backend the page was asked for, else the project's, else the one the page shows; unknown: the slower one.
  const named = [backendFromUrl(page.url()), info && backendOf(info), state.backend];
  const backend = named.find((b): b is Backend => b === 'webgpu' || b === 'wasm') ?? 'webgpu';
  const full: Work = { ...work, steps: work.steps ?? state.steps ?? (info ? stepsOf(info) : 6), load: work.load ?? state.loading };
  const ms = budgetMs(backend, full);
  extendTestTimeout(ms);
  const what = `${full.load ? 'first load and ' : ''}${full.generations ?? 1} generation(s) of ${full.steps} step(s)${full.trainSteps ? ` and ${full.trainSteps} training step(s)` : ''} on ${backend}`;
  const busier = loadFactor() > 1.05 ? ` (the machine is ${loadFactor().toFixed(1)}× busier than at calibration)` : '';
  const because = `${what}: expected ${Math.round(expectedMs(backend, full) / 1000)} s at calibration, allowed ${Math.round(ms / 1000)} s${busier}; past that the page is stuck, not slow\n${describeCalibration()}`;
  return { ms, because };
}

const backendFromUrl = (url: string) => (url.startsWith('http') ? new URL(url).searchParams.get('backend') : null);

/** What the page says of itself now, without waiting: its step count, backend badge and whether it is still loading. */
async function pageState(page: Page): Promise<{ steps?: number; backend?: string; loading: boolean }> {
  return page.evaluate(() => {
    const steps = Number(document.querySelector<HTMLInputElement>('[data-testid=steps]')?.value);
    const main = document.querySelector('main');
    return {
      steps: Number.isFinite(steps) && steps > 0 ? steps : undefined,
      backend: document.querySelector('[data-testid=backend]')?.textContent ?? undefined,
      loading: !main || main.getAttribute('data-status') === 'loading',
    };
  }).catch(() => ({ loading: true }));
}

/** Gives the running test `ms` more time (outside a test, e.g. in a script, there is nothing to extend). */
function extendTestTimeout(ms: number) {
  let info: TestInfo;
  try {
    info = test.info();
  } catch {
    return;
  }
  if (info.timeout > 0) info.setTimeout(info.timeout + ms);
}

export const pixels = (page: Page, testId: 'image-baseline' | 'image-npo'): Promise<number[]> => canvasPixels(page, testId);

/** RGBA of any canvas with a data-testid (sweep cells, the seed pair, the trained LoRA's before/after). */
export async function canvasPixels(page: Page, testId: string): Promise<number[]> {
  return page.getByTestId(testId).evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
}

/**
 * The same image up to WASM kernel rounding (at most 2 levels anywhere, a small mean): what one generation gives when
 * its images were computed in another batch (alone vs beside the other image), as partial regenerations do.
 */
export function expectClose(a: number[], b: number[]) {
  expect(a).toHaveLength(b.length);
  const diffs = a.map((v, i) => Math.abs(v - b[i]));
  expect(Math.max(...diffs)).toBeLessThanOrEqual(2);
  expect(diffs.reduce((x, y) => x + y, 0) / diffs.length).toBeLessThan(0.2);
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

/** RGBA of a PNG our own encoder wrote (8-bit RGB, filter 0 on every row: src/world/png.ts). */
export function decodeOwnPng(bytes: Buffer): { width: number; height: number; rgba: number[] } {
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  const idat: Buffer[] = [];
  for (let at = 8; at < bytes.length;) {
    const length = bytes.readUInt32BE(at);
    if (bytes.toString('ascii', at + 4, at + 8) === 'IDAT') idat.push(bytes.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const rgba: number[] = [];
  for (let y = 0; y < height; y++) {
    const row = y * (1 + 3 * width);
    if (raw[row] !== 0) throw new Error('decodeOwnPng: only filter type 0 is expected');
    for (let x = 0; x < width; x++) rgba.push(raw[row + 1 + 3 * x], raw[row + 2 + 3 * x], raw[row + 3 + 3 * x], 255);
  }
  return { width, height, rgba };
}

/** Page settings as URL query parameters (`&prompt=…&seed=…`), appended to a page URL. */
export const settingsQuery = (settings: Record<string, string | number>) =>
  Object.entries(settings).map(([k, v]) => `&${k}=${encodeURIComponent(String(v))}`).join('');

/**
 * `npm run generate` on onnxruntime-node for a model directory, with each setting as a `--flag value` (camelCase keys
 * as kebab-case flags): the reference the page's pixels are compared with. Returns run.json and both images.
 */
export function generateInNode(modelDir: string, settings: Record<string, string | number>) {
  const out = mkdtempSync(join(tmpdir(), 'generate-'));
  const args = Object.entries(settings).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(v)]);
  execFileSync('npx', ['tsx', '--import', './scripts/raw-imports.mjs', 'src/cli/generate.ts', '--model', modelDir, ...args, '--out', out], { stdio: 'pipe' });
  const image = (kind: string) => decodeOwnPng(readFileSync(join(out, `${kind}.png`)));
  return { run: JSON.parse(readFileSync(join(out, 'run.json'), 'utf8')), baseline: image('baseline'), npo: image('npo') };
}

/**
 * The page's two images equal `reference` (generateInNode) up to kernel rounding: ORT-web's WASM/WebGPU kernels and
 * onnxruntime-node's CPU kernels differ in the last float bits, which after a few steps moves a pixel by a level or
 * two (a few on SwiftShader), never the picture. And NPO changed the image.
 */
export async function expectSamePixels(page: Page, info: TestInfo, reference: ReturnType<typeof generateInNode>) {
  for (const kind of ['baseline', 'npo'] as const) {
    const shown = await pixels(page, `image-${kind}`);
    const { width, height, rgba } = reference[kind];
    expect(shown.length).toBe(width * height * 4);
    const diffs = shown.map((v, i) => Math.abs(v - rgba[i]));
    expect(diffs.reduce((m, d) => Math.max(m, d), 0)).toBeLessThanOrEqual(backendOf(info) === 'webgpu' ? 4 : 2); // no spread: 512² has 10⁶ values
    expect(diffs.reduce((a, b) => a + b, 0) / diffs.length).toBeLessThan(0.2);
  }
  const [baseline, npo] = [await pixels(page, 'image-baseline'), await pixels(page, 'image-npo')];
  expect(baseline.some((v, i) => v !== npo[i])).toBe(true);
}

/** Drops files on `target` as a person dragging them from the desktop would (a DataTransfer holding the Files). */
export async function dropFiles(target: Locator, files: { name: string; bytes: Uint8Array; type?: string }[]) {
  const data = await target.page().evaluateHandle((list) => {
    const transfer = new DataTransfer();
    for (const { name, b64, type } of list) transfer.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type }));
    return transfer;
  }, files.map(({ name, bytes, type }) => ({ name, type, b64: Buffer.from(bytes).toString('base64') })));
  await target.dispatchEvent('dragover', { dataTransfer: data });
  await target.dispatchEvent('drop', { dataTransfer: data });
}

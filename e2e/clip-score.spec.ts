// The CLIP score for real models: the tiny prepared SD1.5 fixture by URL plus the tiny CLIP export
// (scripts/fixtures/make_clip_fixture.py) chosen as a folder. Both images get a score, equal to the same computation
// in Node (transformers.js on onnxruntime-node) from the pixels the page shows, and the CLIP files are never fetched:
// every request stays on the page's origin. Sweep cells get the score too. A folder without the vision model is refused by name.
import { expect, test, type Page } from '@playwright/test';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as transformers from '@huggingface/transformers';
import { readClipFolder, TINY_CLIP_DIRS } from '../src/eval/clip-files-node.ts';
import { loadClipScorer } from '../src/eval/clip-score.ts';
import { allowFor, backendOf, pixels, settingsQuery, waitIdle } from './helpers.ts';
import { SD15_TEST_MODEL_URL } from './test-models.ts';

// CLIP runs on ORT's WASM backend in its own worker whatever the sampling backend is: wasm project only.
test.beforeEach(({}, info) => test.skip(backendOf(info) !== 'wasm', 'the CLIP worker is WASM on both backends'));

const settings = { prompt: 'a red apple on a wooden table, photo', negativePrompt: '', seed: 42, steps: 4, omega: 6.5, alpha: 0.5, beta: 1, scheduler: 'dpm++2m', width: 64, height: 64 };
const SD15_GENERATION = 4; // as sd15.spec.ts: dense η at α ≠ 1 (two UNet calls a step) and two VAE decodes

/** The tiny export and its tokenizer files in one folder, as a user's CLIP folder is (minus the references). */
function clipFolder(without: string[] = []): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'clip-')), 'clip-tiny');
  for (const source of TINY_CLIP_DIRS) cpSync(source, dir, { recursive: true });
  for (const path of ['references.json', ...without]) rmSync(join(dir, path));
  return dir;
}

async function openSd15(page: Page, info: Parameters<typeof waitIdle>[1]) {
  await page.goto(`/?backend=wasm&model=${encodeURIComponent(SD15_TEST_MODEL_URL)}${settingsQuery(settings)}`);
  await waitIdle(page, info, { load: true, steps: settings.steps, generations: SD15_GENERATION });
}

test('a CLIP folder scores both images of a real model, as Node does from the same pixels', async ({ page }, info) => {
  const origin = new URL(String(info.project.use.baseURL)).origin;
  const requests: string[] = [];
  page.context().on('request', (request) => requests.push(request.url()));
  const folder = clipFolder();
  await openSd15(page, info);
  await expect(page.getByTestId('score-baseline')).toHaveAttribute('title', /choose a CLIP model folder/);

  await page.getByTestId('clip-folder').setInputFiles(folder);
  const { ms } = await allowFor(page, info, { load: true, steps: 0 });
  await expect(page.getByTestId('clip-status')).toHaveAttribute('data-status', 'ready', { timeout: ms });
  await expect(page.getByTestId('clip-status')).toContainText('clip-tiny (fp32, ');
  const scorer = await loadClipScorer(transformers, readClipFolder(folder), 'cpu');
  const scores: Record<string, number> = {};
  for (const kind of ['baseline', 'npo'] as const) {
    const line = page.getByTestId(`score-${kind}`);
    await expect(line).toHaveAttribute('data-score', /\d/, { timeout: ms });
    const shown = await pixels(page, `image-${kind}`);
    const node = await scorer.score(Uint8Array.from(shown), settings.width, settings.height, settings.prompt);
    // ORT's WASM and CPU kernels sum in different orders: float32 rounding only.
    expect(Math.abs(Number(await line.getAttribute('data-cosine')) - node.cosine)).toBeLessThan(1e-5);
    expect(Math.abs(Number(await line.getAttribute('data-score')) - node.score)).toBeLessThan(1e-3);
    scores[kind] = node.cosine;
  }
  // NPO changed the image, so the score moved, and the NPO line shows by how much.
  expect(scores.npo).not.toBe(scores.baseline);
  await expect(page.getByTestId('score-diff')).toBeVisible();

  // Sweep cells are scored too, each from its own pixels.
  await page.getByTestId('sweep-rows').fill(String(settings.alpha));
  await page.getByTestId('sweep-columns').fill(`0, ${settings.beta}`);
  await page.getByTestId('sweep-run').click();
  await expect(page.getByTestId('sweep-status')).toHaveAttribute('data-state', 'running');
  const sweep = await allowFor(page, info, { steps: settings.steps, generations: 3 * SD15_GENERATION });
  await expect(page.getByTestId('sweep-status'), sweep.because).toHaveAttribute('data-state', 'idle', { timeout: sweep.ms });
  for (const beta of [0, settings.beta]) {
    const cell = page.locator(`[data-testid=sweep-cell][data-alpha="${settings.alpha}"][data-beta="${beta}"]`);
    await expect(cell).toHaveAttribute('data-score', /\d/, { timeout: ms });
    const shown = await cell.locator('canvas').evaluate((c: HTMLCanvasElement) => Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data));
    const node = await scorer.score(Uint8Array.from(shown), settings.width, settings.height, settings.prompt);
    expect(Math.abs(Number(await cell.getAttribute('data-score')) - node.score)).toBeLessThan(1e-3);
  }
  await scorer.dispose();
  await expect(page.getByTestId('sweep-best')).toHaveAttribute('data-score', /\d/);
  // The CLIP files were read from the chosen folder: nothing was fetched for them, nothing left the origin.
  expect(requests.filter((url) => /text_model|vision_model|preprocessor_config|clip-tiny/.test(url))).toEqual([]);
  expect(requests.filter((url) => !url.startsWith(origin) && !url.startsWith('blob:') && !url.startsWith('data:'))).toEqual([]);
});

test('a CLIP folder without its vision model is refused by name, and generation goes on', async ({ page }, info) => {
  await openSd15(page, info);
  await page.getByTestId('clip-folder').setInputFiles(clipFolder(['onnx/vision_model.onnx']));
  const { ms } = await allowFor(page, info, { load: true, steps: 0 });
  await expect(page.getByTestId('clip-status')).toHaveAttribute('data-status', 'failed', { timeout: ms });
  await expect(page.getByTestId('clip-status')).toContainText('missing onnx/vision_model.onnx');
  await expect(page.getByTestId('score-npo')).toHaveText('CLIP —');
  await page.getByTestId('generate').click();
  await waitIdle(page, info, { steps: settings.steps, generations: SD15_GENERATION });
  await expect(page.getByTestId('error')).toHaveCount(0);
});

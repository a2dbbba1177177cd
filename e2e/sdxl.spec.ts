// A prepared SDXL directory (the tiny optimum-export fixture, fixtures/sdxl, prepared by e2e/prepare-test-models.ts)
// loaded by URL: the page shows the same pixels as `npm run generate` on onnxruntime-node, with the empty negative
// box meaning "no negative prompt" (zero embeddings, as diffusers' SDXL pipeline) on both sides, and says so.
import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendOf, decodeOwnPng, pixels, stepsOf, waitIdle } from './helpers.ts';
import { SDXL_TEST_MODEL, SDXL_TEST_MODEL_URL } from './test-models.ts';

const settings = { prompt: 'a photo of an astronaut riding a horse on mars', seed: 42, steps: 4, omega: 4, alpha: 0.5, beta: 1, scheduler: 'euler', width: 64, height: 64 };
/**
 * One page generation in embedded-model generations (the calibration's unit), as e2e/sd15.spec.ts: the dense η at
 * α ≠ 1 takes two UNet calls a step, two text encoders, two VAE decodes at 64².
 */
const SDXL_GENERATION = 4;
type Settings = typeof settings;
const query = (s: Settings) => Object.entries(s).map(([k, v]) => `&${k}=${encodeURIComponent(String(v))}`).join('');

/** `npm run generate` without --negative-prompt: no negative prompt, as the page's empty box. */
function generateInNode(settings: Settings) {
  const out = mkdtempSync(join(tmpdir(), 'sdxl-generate-'));
  const args = Object.entries(settings).flatMap(([k, v]) => [`--${k}`, String(v)]);
  execFileSync('npx', ['tsx', '--import', './scripts/raw-imports.mjs', 'src/cli/generate.ts', '--model', SDXL_TEST_MODEL, ...args, '--out', out], { stdio: 'pipe' });
  const run = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  return { run, baseline: decodeOwnPng(readFileSync(join(out, 'baseline.png'))), npo: decodeOwnPng(readFileSync(join(out, 'npo.png'))) };
}

test('a prepared SDXL directory by URL shows the same pixels as npm run generate', async ({ page }, info) => {
  const run = { ...settings, steps: Math.min(settings.steps, stepsOf(info)) }; // SwiftShader: fewer steps on webgpu
  const reference = generateInNode(run);
  expect(reference.run.params.negativePromptGiven).toBe(false);
  expect(reference.run.tokens.prompt.ids2).toHaveLength(77); // both tokenizers' ids in run.json
  await page.goto(`/?backend=${backendOf(info)}&model=${encodeURIComponent(SDXL_TEST_MODEL_URL)}${query(run)}`);
  await waitIdle(page, info, { load: true, steps: run.steps, generations: SDXL_GENERATION });
  await expect(page.getByTestId('backend')).toHaveText(backendOf(info));
  await expect(page.getByTestId('model-kind')).toContainText('sdxl');
  await expect(page.getByTestId('negative-none')).toContainText('empty: none');
  for (const kind of ['baseline', 'npo'] as const) {
    const shown = await pixels(page, `image-${kind}`);
    const { width, height, rgba } = reference[kind];
    expect(shown.length).toBe(width * height * 4);
    // as e2e/sd15.spec.ts: ORT-web and onnxruntime-node kernels round differently in the last bits
    const diffs = shown.map((v, i) => Math.abs(v - rgba[i]));
    expect(Math.max(...diffs)).toBeLessThanOrEqual(backendOf(info) === 'webgpu' ? 4 : 2);
    expect(diffs.reduce((a, b) => a + b, 0) / diffs.length).toBeLessThan(0.2);
  }
  const [baseline, npo] = [await pixels(page, 'image-baseline'), await pixels(page, 'image-npo')];
  expect(baseline.some((v, i) => v !== npo[i])).toBe(true);
});

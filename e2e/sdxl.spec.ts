// A prepared SDXL directory (the tiny optimum-export fixture, fixtures/sdxl, prepared by e2e/prepare-test-models.ts)
// loaded by URL: the page shows the same pixels as `npm run generate` on onnxruntime-node, with the empty negative
// box meaning "no negative prompt" (zero embeddings, as diffusers' SDXL pipeline) on both sides, and says so; its δ is
// two LoRAs stacked with their own scales.
import { expect, test } from '@playwright/test';
import { backendOf, expectSamePixels, generateInNode, settingsQuery, stepsOf, waitIdle } from './helpers.ts';
import { SDXL_TEST_MODEL, SDXL_TEST_MODEL_URL } from './test-models.ts';

const settings = { prompt: 'a photo of an astronaut riding a horse on mars', seed: 42, steps: 4, omega: 4, alpha: 0.5, beta: 1, scheduler: 'euler', width: 64, height: 64 };
/**
 * One page generation in embedded-model generations (the calibration's unit), as e2e/sd15.spec.ts: the dense η at
 * α ≠ 1 takes two UNet calls a step, two text encoders, two VAE decodes at 64².
 */
const SDXL_GENERATION = 4;

test('a prepared SDXL directory by URL shows the same pixels as npm run generate', async ({ page }, info) => {
  const run = { ...settings, steps: Math.min(settings.steps, stepsOf(info)) }; // SwiftShader: fewer steps on webgpu
  const reference = generateInNode(SDXL_TEST_MODEL, run); // no --negative-prompt: none, as the page's empty box
  expect(reference.run.params.negativePromptGiven).toBe(false);
  expect(reference.run.tokens.prompt.ids2).toHaveLength(77); // both tokenizers' ids in run.json
  await page.goto(`/?backend=${backendOf(info)}&model=${encodeURIComponent(SDXL_TEST_MODEL_URL)}${settingsQuery(run)}`);
  await waitIdle(page, info, { load: true, steps: run.steps, generations: SDXL_GENERATION });
  await expect(page.getByTestId('backend')).toHaveText(backendOf(info));
  await expect(page.getByTestId('model-kind')).toContainText('sdxl');
  await expect(page.getByTestId('negative-none')).toContainText('empty: none');
  // δ is two LoRAs stacked with their own scales (prepare-test-models.ts), as npm run generate applied them
  await expect(page.getByTestId('model-offsets')).toContainText('δ: 1× diffusers LoRA (138 layers) + 0.8× diffusers LoRA (68 layers)');
  await expectSamePixels(page, info, reference);
});

// Training δ in the page on a prepared SD1.5 model (the tiny real-exporter fixture, prepared by
// e2e/prepare-test-models.ts): the worker encodes the pairs' images through the model's VAE encoder, trains at the pairs
// file's own size, and gets the same losses as `trainLora` in Node on onnxruntime-node; the δ changes only the NPO
// image and downloads in diffusers keys; the panel shows the memory plan, and
// training with recomputation (activation checkpointing) forced gives the same losses. WASM only: a WebGPU training step on SwiftShader takes minutes at this size.
import { expect, test } from '@playwright/test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePairs, parsePairs } from '../src/train/pairs.ts';
import { allowFor, backendOf, waitIdle } from './helpers.ts';
import { expectTrainingLikeNode, SD15_GENERATION, useAndDownload } from './sd15-training.ts';
import { SD15_TEST_MODEL_URL } from './test-models.ts';

const S = 64; // the fixture's image size

test('trains δ on a prepared SD1.5 model with the same losses as Node, uses it, and downloads it', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'a WebGPU training step on SwiftShader takes minutes at this size; WASM checks the worker path');
  const image = (v: number) => Float32Array.from({ length: 3 * S * S }, (_, i) => v + 0.2 * Math.sin(i / 7));
  const path = join(mkdtempSync(join(tmpdir(), 'pairs-sd15-')), 'pairs.json');
  writeFileSync(path, JSON.stringify(encodePairs([{ prompt: 'a red square', winner: image(0.6), loser: image(-0.5) }], S, S)));
  const steps = 2;
  await page.goto(`/?backend=wasm&model=${encodeURIComponent(SD15_TEST_MODEL_URL)}&steps=2&width=${S}&height=${S}`);
  await waitIdle(page, info, { load: true, steps: 2, generations: SD15_GENERATION });
  await page.getByTestId('pairs-file').setInputFiles(path);
  const losses = await expectTrainingLikeNode(page, info, parsePairs(readFileSync(path, 'utf8'), { width: S, height: S }), S, steps);
  // the memory plan, before the first step: it fits WASM's 4 GiB, so 'auto' recomputes nothing
  const plan = page.getByTestId('train-plan');
  await expect(plan).toHaveAttribute('data-checkpoint', 'off');
  await expect(plan).toHaveText(/^weights fp32, memory plan \d+\.\d\d GiB without checkpointing$/);

  const saved = await useAndDownload(page, info, SD15_GENERATION);
  expect([...saved.tensors.keys()].filter((k) => k.endsWith('.lora.down.weight'))).toHaveLength(32);

  // recomputation forced in the panel: the plan says so, and training gives the same losses
  await page.getByTestId('train-checkpoint').selectOption('layers');
  await page.getByTestId('train').click();
  const training = await allowFor(page, info, { steps: 0, generations: 2 * SD15_GENERATION, trainSteps: steps * SD15_GENERATION, trainBatch: 1 });
  await expect(plan, training.because).toHaveAttribute('data-checkpoint', 'layers', { timeout: training.ms }); // a new run's plan
  await expect(page.getByTestId('train-progress'), training.because).toHaveAttribute('value', String(steps), { timeout: training.ms });
  await expect(plan).toHaveText(/^weights fp32, checkpointing layers: memory plan \d+\.\d\d GiB \(\d+\.\d\d GiB without; activations .* instead of .*\)$/);
  const recomputed: number[] = JSON.parse((await page.getByTestId('train-status').getAttribute('data-losses'))!);
  expect(recomputed).toHaveLength(steps);
  recomputed.forEach((loss, i) => expect(Math.abs(loss - losses[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(loss))));
});

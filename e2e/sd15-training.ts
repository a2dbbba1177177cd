// Shared by the SD training specs: train δ in the page on the loaded tiny SD1.5 (or SDXL) and check the losses shown
// equal `trainLora` in Node (onnxruntime-node) on the same pairs, the same settings and seed.
import { expect, type Page, type TestInfo } from '@playwright/test';
import * as ort from 'onnxruntime-node';
import { readModelDirectory } from '../src/pipelines/read-directory.ts';
import type { PreferencePair } from '../src/train/pairs.ts';
import { trainLora } from '../src/train/train-lora.ts';
import { readFileSync } from 'node:fs';
import { readSafetensors, type SafetensorsFile } from '../src/lora/safetensors.ts';
import { allowFor, differingPixels, pixels, waitIdle } from './helpers.ts';
import { SD15_TEST_MODEL } from './test-models.ts';

/** A 64² generation of the fixture costs about this many embedded-model generations (as e2e/sd15.spec.ts). */
export const SD15_GENERATION = 4;

/**
 * The loaded model: its prepared directory, a generation's cost in embedded-model generations, the panel's β_dpo, and
 * the training graph's building and session creation in training steps' worth (SDXL's graph has 3.8× SD1.5's nodes).
 */
export interface TrainedModel { dir: string; generation: number; beta: number; setupSteps: number }
const SD15: TrainedModel = { dir: SD15_TEST_MODEL, generation: SD15_GENERATION, beta: 500, setupSteps: 2 * SD15_GENERATION };

/**
 * How the page's losses may differ from Node's: `relative` × max(1, |loss|). The default, 1e-3, is for CPU kernels
 * (WASM vs onnxruntime-node); WebGPU's float32 sums run in another order (see train-sd15.spec.ts for its measured gap).
 */
export interface LikeNode { seed?: number; relative?: number }

/**
 * Trains `steps` steps (batch 1, rank 2, the panel's NPO defaults, seed `like.seed` or the panel's 0) in the page;
 * returns the losses shown and Node's.
 */
export async function expectTrainingLikeNode(page: Page, info: TestInfo, pairs: PreferencePair[], size: number, steps: number, model = SD15, like: LikeNode = {}): Promise<number[]> {
  return (await trainLikeNode(page, info, pairs, size, steps, model, like)).browser;
}

export async function trainLikeNode(page: Page, info: TestInfo, pairs: PreferencePair[], size: number, steps: number, model = SD15, like: LikeNode = {}) {
  const seed = like.seed ?? 0;
  await expect(page.getByTestId('train-beta')).toHaveValue(String(model.beta)); // the panel's default for this family
  await page.getByTestId('train-seed').fill(String(seed));
  await page.getByTestId('train-steps').fill(String(steps));
  await page.getByTestId('train-batch').fill('1');
  await page.getByTestId('train-rank').fill('2');
  await page.getByTestId('train').click();
  // graph building and session creation, then the steps
  const training = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: model.setupSteps + steps * model.generation, trainBatch: 1 });
  await expect(page.getByTestId('use-trained'), training.because).toBeVisible({ timeout: training.ms });
  const browserLosses: number[] = JSON.parse((await page.getByTestId('train-status').getAttribute('data-losses'))!);
  // Node's run on the same pairs builds the same graph: give the test the same time again for it
  await allowFor(page, info, { steps: 0, generations: 0, trainSteps: model.setupSteps + steps * model.generation, trainBatch: 1 });
  const { manifest, files } = readModelDirectory(model.dir);
  const nodeRun = await trainLora({
    ort, model: { manifest, files }, pairs, reverse: true,
    rank: 2, steps, beta: model.beta, lr: 1e-3, batch: 1, seed, resolution: { width: size, height: size },
  });
  const node = nodeRun.history.map((r) => r.loss);
  expect(browserLosses).toHaveLength(steps);
  browserLosses.forEach((loss, i) => expect(Math.abs(loss - node[i]), `step ${i + 1}: page ${browserLosses} vs Node ${node}`).toBeLessThan((like.relative ?? 1e-3) * Math.max(1, Math.abs(loss))));
  return { browser: browserLosses, node };
}

/** Uses the trained δ (only the NPO image may change, at `generation`'s cost) and downloads it; returns the file read back. */
export async function useAndDownload(page: Page, info: TestInfo, generation: number): Promise<SafetensorsFile> {
  const before = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await page.getByTestId('use-trained').click();
  await expect(page.getByTestId('train-message')).toContainText('as δ');
  await waitIdle(page, info, { steps: 2, generations: generation });
  expect(differingPixels(before.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  expect(differingPixels(before.npo, await pixels(page, 'image-npo'))).toBeGreaterThan(0);
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-lora').click()]);
  return readSafetensors(new Uint8Array(readFileSync((await download.path())!)));
}

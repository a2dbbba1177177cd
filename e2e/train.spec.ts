// Training a δ in the browser: the same DPO/NPO step as in Node (same loss within tolerance), then using it as δ
// (only the NPO image changes) and downloading it (a LoRA file the project reads back).
import { expect, test } from '@playwright/test';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodePairs } from '../src/train/pairs.ts';
import { trainLora } from '../src/train/train-lora.ts';
import { readSafetensors } from '../src/lora/safetensors.ts';
import { parseManifest } from '../src/model/manifest.ts';
import { allowFor, backendOf, differingPixels, openPlayground, pixels, waitIdle } from './helpers.ts';

const manifest = parseManifest(readFileSync('models/manifest.json', 'utf8'));
const files = new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join('models', f.path)))]));
const size = manifest.unet.config.sampleSize;

function pairsFile() {
  const gradient = (flip: number) => Float32Array.from({ length: 3 * size * size }, (_, i) => flip * (((i % size) / size) * 2 - 1));
  const pairs = [
    { prompt: manifest.defaults.prompt, winner: gradient(1), loser: gradient(-1) },
    { prompt: 'a blue square', winner: gradient(-0.5), loser: gradient(0.5) },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'pairs-'));
  const path = join(dir, 'pairs.json');
  writeFileSync(path, JSON.stringify(encodePairs(pairs, size, size)));
  return { path, json: readFileSync(path, 'utf8') };
}

// Both backends: the training graph runs on ORT's WebGPU EP in one and its WASM EP in the other, and both must match
// Node's losses.
test('trains δ in the browser with the same losses as Node, uses it, and downloads it', async ({ page }, info) => {
  // WebGPU on SwiftShader takes minutes per training step: one step of one pair there, three of two pairs on WASM.
  const steps = backendOf(info) === 'webgpu' ? 1 : 3;
  const batch = backendOf(info) === 'webgpu' ? 1 : 2;
  const { path, json } = pairsFile();
  await openPlayground(page, info);
  await page.getByTestId('pairs-file').setInputFiles(path);
  await page.getByTestId('train-steps').fill(String(steps));
  await page.getByTestId('train-batch').fill(String(batch));
  await page.getByTestId('train-rank').fill('2');
  await page.getByTestId('train-hflip').check(); // the pairs are not mirror-symmetric: the flips change the losses
  if (steps > 1) { // two micro-batches per update, linear schedule with one warm-up step (a zero first update)
    await page.getByTestId('train-accum').fill('2');
    await page.getByTestId('train-lr-schedule').selectOption('linear');
    await page.getByTestId('train-lr-warmup').fill('1');
  }
  await page.getByTestId('train').click();
  const training = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: steps, trainBatch: batch * (steps > 1 ? 2 : 1) }); // 2 micro-batches a step on WASM
  await expect(page.getByTestId('use-trained'), training.because).toBeVisible({ timeout: training.ms });
  const browserLosses: number[] = JSON.parse((await page.getByTestId('train-status').getAttribute('data-losses'))!);

  // The same run in Node (onnxruntime-node, CPU): same pairs, seed and settings give the same losses.
  const { parsePairs } = await import('../src/train/pairs.ts');
  const schedule = steps > 1 ? { gradAccum: 2, lrSchedule: 'linear' as const, lrWarmup: 1 } : {};
  const nodeSettings = { ort, model: { manifest, files }, pairs: parsePairs(json, { width: size, height: size }), reverse: true, rank: 2, steps, beta: 500, lr: 1e-3, batch, seed: 0, ...schedule };
  const nodeRun = await trainLora({ ...nodeSettings, hflip: true });
  expect(browserLosses).toHaveLength(steps);
  browserLosses.forEach((loss, i) => expect(Math.abs(loss - nodeRun.history[i].loss)).toBeLessThan(1e-3 * Math.max(1, Math.abs(loss))));
  if (steps > 1) {
    // the warm-up's zero first update leaves step 2 at ln 2 too; step 3 shows the mirrored draws: the checkbox reached the trainer
    expect(browserLosses[1]).toBeCloseTo(Math.LN2, 5);
    const unflipped = await trainLora(nodeSettings);
    expect(Math.max(...unflipped.history.map((h, i) => Math.abs(h.loss - browserLosses[i])))).toBeGreaterThan(1e-3);
  }

  const before = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await page.getByTestId('use-trained').click();
  await expect(page.getByTestId('train-message')).toContainText('as δ');
  await waitIdle(page);
  await expect(page.locator('main')).toHaveAttribute('data-status', 'ready');
  expect(differingPixels(before.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  // A barely trained δ moves the image a little; it must move it at all.
  expect(differingPixels(before.npo, await pixels(page, 'image-npo'))).toBeGreaterThan(0);

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-lora').click()]);
  const saved = readSafetensors(new Uint8Array(readFileSync((await download.path())!)));
  expect([...saved.tensors.keys()].some((k) => k.startsWith('unet.') && k.endsWith('.lora.down.weight'))).toBe(true);
});

test('a pairs file for the wrong image size is refused with the sizes named', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'the worker checks the pairs file before any ORT session runs, the same on both backends; WASM opens the page fastest');
  const dir = mkdtempSync(join(tmpdir(), 'pairs-'));
  const path = join(dir, 'bad.json');
  writeFileSync(path, JSON.stringify({ version: 1, width: 8, height: 8, pairs: [] }));
  await openPlayground(page, info);
  await page.getByTestId('pairs-file').setInputFiles(path);
  await page.getByTestId('train').click();
  await expect(page.getByTestId('train-error')).toContainText('8×8');
});

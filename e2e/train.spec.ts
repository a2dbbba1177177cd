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

test('pairs that parse but cannot be trained on are refused when chosen, naming what is wrong, and the pairs before stay', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'the page checks pairs when they are chosen, before any ORT session runs, the same on both backends; WASM opens the page fastest');
  const good = pairsFile();
  const valid = JSON.parse(good.json);
  const dir = mkdtempSync(join(tmpdir(), 'pairs-'));
  // Each broken the way a hand-made or foreign pairs.json is, and each refused by npm run train with this message.
  const broken: [string, unknown, string][] = [
    ['wrong-size.json', { ...valid, width: 8, height: 8 }, 'pairs file is for 8×8 images; the model works at 32×32'],
    ['no-preferred.json', { ...valid, pairs: [valid.pairs[0], { ...valid.pairs[1], preferred: undefined }] }, 'pair 1: missing field "preferred"'],
    ['short-image.json', { ...valid, pairs: [{ ...valid.pairs[0], b: { encoding: 'rgb8', data: 'AAAA' } }] }, 'pair 0, image b: rgb8 at 32×32 needs 3072 bytes, got 3'],
    ['unknown-word.json', { ...valid, pairs: [{ ...valid.pairs[0], prompt: 'a red apple' }] }, 'pair 0: the model cannot read the prompt "a red apple"'],
  ];
  await openPlayground(page, info);
  const status = page.getByTestId('train-status');
  const error = page.getByTestId('train-error');
  // Nothing loaded before: a refused file leaves nothing to train on.
  writeFileSync(join(dir, broken[0][0]), JSON.stringify(broken[0][1]));
  await page.getByTestId('pairs-file').setInputFiles(join(dir, broken[0][0]));
  await expect(error).toHaveText(`${broken[0][0]} was not loaded: ${broken[0][2]}`);
  await expect(status).toHaveText('no pairs loaded');
  await expect(page.getByTestId('train')).toBeDisabled();

  await page.getByTestId('pairs-file').setInputFiles(good.path);
  await expect(status).toHaveText('pairs.json loaded');
  await expect(error).toBeHidden();
  for (const [name, value, message] of broken) {
    writeFileSync(join(dir, name), JSON.stringify(value));
    await page.getByTestId('pairs-file').setInputFiles(join(dir, name));
    await expect(error).toContainText(`${name} was not loaded: ${message}`);
    await expect(status).toHaveText('pairs.json loaded'); // the good pairs stay, and train
    await expect(page.getByTestId('train')).toBeEnabled();
  }
});

// The training panel's way out to diffusers + accelerate and back (issue 29), WASM only (page behaviour, not backend):
// "Download as dataset" gives a zip whose folder is the parquet dataset train_diffusion_dpo.py reads (read back here
// with our zip reader and hyparquet: labels reversed for NPO, the pairs' pixels as PNG), the accelerate command shows
// the run's settings; on the tiny SD1.5 the δ the real script saved (fixtures/sd15/dpo-script-delta.safetensors)
// loads as δ with the same pixels as `npm run generate --delta`, and "Copy as diffusers script" copies the script
// Node's emitter writes for the same settings and files. The embedded model says it has no diffusers equivalent.
import { expect, test } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { parquetReadObjects } from 'hyparquet';
import { parseAnyManifest, type PreparedManifest } from '../src/model/manifest.ts';
import { diffusersModelOf, diffusersScript } from '../src/share/diffusers-script.ts';
import { decodeImageNode } from '../src/train/decode-node.ts';
import { PARQUET_DECOMPRESSORS } from '../src/train/pair-sources.ts';
import { decodePairs, type PairsFile } from '../src/train/pairs.ts';
import { openZip } from '../src/train/zip.ts';
import { backendOf, expectSamePixels, generateInNode, settingsQuery, waitIdle } from './helpers.ts';
import { embeddedPairsPath } from './pairs-file.ts';
import { SD15_TEST_MODEL, SD15_TEST_MODEL_URL } from './test-models.ts';

test('Download as dataset: a zip of the parquet dataset, labels reversed for NPO; the command has the run\'s settings', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'page behaviour, not backend: wasm only');
  await page.goto('/?backend=wasm&steps=2');
  await waitIdle(page, info, { load: true, steps: 2 });
  const pairsPath = embeddedPairsPath();
  await page.getByTestId('pairs-file').setInputFiles(pairsPath);
  await expect(page.getByTestId('train-status')).toHaveText('pairs.json loaded');

  const command = page.getByTestId('accelerate-command');
  await expect(command).toContainText('--dataset_name ./npo-pairs');
  await expect(command).toContainText('--dataset_split_name train');
  await expect(command).toContainText('--no_hflip');
  await page.getByTestId('train-rank').fill('6');
  await expect(command).toContainText('--rank 6');
  await page.getByTestId('accelerate-released').check();
  await expect(command).toContainText('--rank 8');
  await expect(command).toContainText('--beta_dpo 500');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('dataset-download').click()]);
  expect(download.suggestedFilename()).toBe('npo-pairs.zip');
  const archive = openZip(new Uint8Array(readFileSync((await download.path())!)), 'npo-pairs.zip');
  expect([...archive.entries.keys()]).toEqual(['npo-pairs/README.md', 'npo-pairs/data/train-00000-of-00001.parquet']);
  const card = new TextDecoder().decode(await archive.read('npo-pairs/README.md'));
  expect(card).toContain('path: data/train-*');
  const shard = await archive.read('npo-pairs/data/train-00000-of-00001.parquet');
  const rows = await parquetReadObjects({ file: { byteLength: shard.byteLength, slice: (s, e) => shard.slice(s, e).buffer }, utf8: false, compressors: PARQUET_DECOMPRESSORS });
  const file: PairsFile = JSON.parse(readFileSync(pairsPath, 'utf8'));
  const pairs = decodePairs(file, { width: file.width, height: file.height });
  expect(rows.map((r) => [r.label_0, r.label_1])).toEqual(pairs.map(() => [0, 1])); // NPO is ticked by default
  for (const [i, row] of rows.entries()) {
    const winner = await decodeImageNode(row.jpg_0 as Uint8Array, 'jpg_0');
    const plane = file.width * file.height;
    for (let p = 0; p < plane; p += 7) expect(winner.data[p * 4]).toBe(Math.round((pairs[i].winner[p] + 1) * 127.5));
  }
  await expect(page.getByTestId('scale-out-status')).toContainText('npo-pairs.zip: 2 pairs, labels reversed (NPO)');

  await expect(page.getByTestId('copy-diffusers-script')).toBeDisabled();
  await expect(page.getByTestId('diffusers-unavailable')).toContainText('no diffusers equivalent');
});

test("SD1.5: the δ train_diffusion_dpo.py saved loads as δ like npm run generate --delta; Copy as diffusers script", async ({ page, context }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'page behaviour, not backend: wasm only');
  const run = { prompt: 'a red apple on a wooden table, photo', negativePrompt: '', seed: 42, steps: 2, omega: 6.5, alpha: 0.5, beta: 1, scheduler: 'dpm++2m', width: 64, height: 64 };
  await page.goto(`/?backend=wasm&model=${encodeURIComponent(SD15_TEST_MODEL_URL)}${settingsQuery(run)}`);
  await waitIdle(page, info, { load: true, steps: run.steps, generations: 4 });

  const delta = 'fixtures/sd15/dpo-script-delta.safetensors';
  await page.getByTestId('lora-file-delta').setInputFiles(delta);
  await expect(page.getByTestId('train-message')).toHaveText('now using dpo-script-delta.safetensors as δ');
  await waitIdle(page, info, { steps: run.steps, generations: 4 });
  await expectSamePixels(page, info, generateInNode(SD15_TEST_MODEL, { ...run, delta }));

  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.getByTestId('copy-diffusers-script').click();
  await expect(page.getByTestId('scale-out-status')).toHaveText('diffusers script copied');
  const copied: string = await page.evaluate(() => navigator.clipboard.readText());
  const manifest = parseAnyManifest(readFileSync(`${SD15_TEST_MODEL}/manifest.json`, 'utf8')) as PreparedManifest;
  const model = { ...diffusersModelOf(manifest, ''), delta: { kind: 'loras' as const, loras: [{ path: 'dpo-script-delta.safetensors', scale: 1 }] } };
  expect(copied).toBe(diffusersScript({ model, params: { ...run, negativePromptGiven: undefined }, madeBy: "the page's Copy as diffusers script" }));
  expect(copied).toContain('DELTA_LORAS = ["dpo-script-delta.safetensors:1"]');
  expect(copied).toContain('ETA_UNET = "fixtures/sd15/dpo-unet"');
});

// Image pair sources in the page, on the prepared tiny SD1.5 (e2e/prepare-test-models.ts): an image folder chosen with
// the folder picker, a zip dropped on the training panel, a Pick-a-Pic shard; the browser decodes the images
// (createImageBitmap) and prepares them as diffusers' DPO script (Pillow's bilinear resize + centre crop). The prepared
// pairs equal Node's (sharp decoding, byte-equal to Pillow in src/train/pair-sources.test.ts), training on them runs
// and shows its loss, and broken inputs are named. WASM only, as e2e/train-sd15.spec.ts.
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImageNode, folderFilesNode } from '../src/train/decode-node.ts';
import { pairsFromFolder } from '../src/train/pair-sources.ts';
import { decodePairs, type PairsFile } from '../src/train/pairs.ts';
import { backendOf, dropFiles, waitIdle } from './helpers.ts';
import { expectTrainingLikeNode, SD15_GENERATION } from './sd15-training.ts';
import { SD15_TEST_MODEL_URL } from './test-models.ts';

const S = 64; // the fixture's image size
const FIXTURES = 'fixtures/pair-sources';

async function downloadedPairs(page: Page): Promise<PairsFile> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('pairs-download').click()]);
  return JSON.parse(readFileSync((await download.path())!, 'utf8'));
}

const bytesOf = (b64: string) => Buffer.from(b64, 'base64');
const worst = (a: Uint8Array, b: Uint8Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test('an image folder, a dropped zip and a Pick-a-Pic shard become pairs as in Node; training on them shows its loss', async ({ page }, info) => {
  test.skip(backendOf(info) !== 'wasm', 'decoding and preparing run on the page, not the backend; WASM trains the tiny SD1.5 fastest');
  await page.goto(`/?backend=wasm&model=${encodeURIComponent(SD15_TEST_MODEL_URL)}&steps=2&width=${S}&height=${S}`);
  await waitIdle(page, info, { load: true, steps: 2, generations: SD15_GENERATION });
  const status = page.getByTestId('train-status');

  // the folder picker: the browser's decoding + our resize equal Node's (PNG and lossless WebP exactly, JPEG within 1)
  await page.getByTestId('pairs-folder').setInputFiles(join(FIXTURES, 'folder'));
  await expect(status).toHaveText(`folder (2 pairs at ${S}×${S}) loaded`);
  const browser = await downloadedPairs(page);
  const node = (await pairsFromFolder(await folderFilesNode(join(FIXTURES, 'folder')), 'folder', { size: S, decode: decodeImageNode })).file;
  expect(browser.pairs.map((p) => p.prompt)).toEqual(node.pairs.map((p) => p.prompt));
  const names = [['good/0.png', 'bad/0.jpg'], ['good/1.webp', 'bad/1.png']];
  browser.pairs.forEach((pair, i) => {
    for (const [side, name] of [['a', names[i][0]], ['b', names[i][1]]] as const) {
      expect(worst(bytesOf(pair[side].data), bytesOf(node.pairs[i][side].data)), name).toBeLessThanOrEqual(name.endsWith('.jpg') ? 1 : 0);
    }
  });

  // train two steps on them: the loss is shown, and equals Node's on the same pairs
  await expectTrainingLikeNode(page, info, decodePairs(browser, { width: S, height: S }), S, 2);
  await expect(status).toContainText('step 2/2 · loss ');

  // a zip dropped on the panel (metadata.csv in a subfolder): the same pairs
  await dropFiles(page.getByTestId('train-panel'), [{ name: 'pairs.zip', bytes: readFileSync(join(FIXTURES, 'pairs.zip')) }]);
  await expect(status).toHaveText(`pairs.zip (2 pairs at ${S}×${S}) loaded`);
  expect((await downloadedPairs(page)).pairs).toEqual(browser.pairs);

  // a Pick-a-Pic shard: the tie dropped and said
  await page.getByTestId('pairs-file').setInputFiles(join(FIXTURES, 'pickapic.parquet'));
  await expect(status).toHaveText(`pickapic.parquet (2 pairs at ${S}×${S}) loaded`);
  await expect(page.getByTestId('train-message')).toHaveText('pickapic.parquet: 1 tie dropped');

  // broken inputs are named (an image in a shard, an entry of a zip), and the pairs loaded before stay
  await page.getByTestId('pairs-file').setInputFiles(join(FIXTURES, 'pickapic-broken-image.parquet'));
  await expect(page.getByTestId('train-error')).toContainText('pickapic-broken-image.parquet row 2, jpg_1: cannot be decoded as a PNG, JPEG or WebP image');
  await expect(status).toHaveText(`pickapic.parquet (2 pairs at ${S}×${S}) loaded`);
  await expect(page.getByTestId('train')).toBeEnabled();
  const zip = readFileSync(join(FIXTURES, 'pairs.zip'));
  const corrupt = Buffer.from(zip);
  const at = zip.indexOf('pairs/good/0.png') + 'pairs/good/0.png'.length + 40; // inside its compressed data (the local header comes first)
  corrupt[at] ^= 0x5a;
  await page.getByTestId('pairs-file').setInputFiles({ name: 'corrupt.zip', mimeType: 'application/zip', buffer: corrupt });
  await expect(page.getByTestId('train-error')).toContainText('corrupt.zip: pairs/good/0.png: ');
});


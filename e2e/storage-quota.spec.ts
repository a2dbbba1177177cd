// A full browser storage quota (issue 6): the model cache (src/model/source/cache.ts) turns the Cache API's
// QuotaExceededError into a notice, and the page still loads the model from the network and generates. The quota is
// made real through Chromium's DevTools protocol (Storage.overrideQuotaForOrigin), set below the smallest model file
// before the page first loads. And a corrupt cache entry is replaced by a fresh download.
import { expect, test, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { colourCount, openPlayground, pixels, setNumber, waitIdle } from './helpers.ts';

const manifest: { files: { path: string; bytes: number; sha256: string }[] } = JSON.parse(readFileSync('models/manifest.json', 'utf8'));
const CACHE_NAME = 'npo-playground-models-v1'; // src/model/source/cache.ts

// Caching is backend-independent; WASM is the fast path on a machine without a GPU.
test.beforeEach(({}, info) => test.skip(info.project.name !== 'wasm', 'storage does not depend on the backend'));

/** Limits this origin's storage to `bytes` for the rest of the page's life (the browser context is fresh per test). */
async function overrideQuota(page: Page, origin: string, bytes: number) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: bytes });
}

/** How many entries the model cache holds, read from the page (the same origin's CacheStorage as the worker's). */
async function cachedEntries(page: Page): Promise<number> {
  return page.evaluate(async (name) => ((await caches.has(name)) ? (await (await caches.open(name)).keys()).length : 0), CACHE_NAME);
}

test('a full storage quota becomes a notice; the model loads uncached and generates', async ({ page, baseURL }, info) => {
  const smallest = Math.min(...manifest.files.map((f) => f.bytes));
  await overrideQuota(page, new URL(baseURL!).origin, Math.floor(smallest / 2));
  const errors = await openPlayground(page, info);

  const notice = page.getByTestId('notice');
  await expect(notice).toContainText('browser storage is full (QuotaExceededError)');
  // Every file was refused, each named (the ": path is not" form keeps unet.onnx apart from unet.onnx.data).
  for (const { path } of manifest.files) await expect(notice).toContainText(`): ${path} is not cached`);
  await expect(page.getByTestId('error')).toHaveCount(0);
  expect(errors).toEqual([]);
  expect(colourCount(await pixels(page, 'image-baseline'))).toBeGreaterThan(4); // drawn, not blank
  expect(colourCount(await pixels(page, 'image-npo'))).toBeGreaterThan(4);
  expect(await cachedEntries(page)).toBe(0);
});

// History under a full quota (issue 11): IndexedDB refuses the entry, the page keeps it for the session (marked
// unsaved, still restorable) and says why, instead of losing it or failing silently.
test('a full storage quota keeps history entries in the page, marked unsaved, with the reason', async ({ page, baseURL }, info) => {
  await overrideQuota(page, new URL(baseURL!).origin, 1024);
  await openPlayground(page, info);
  const item = page.getByTestId('history-item');
  await expect(item).toHaveCount(1);
  await expect(item).toHaveAttribute('data-saved', 'false');
  await expect(page.getByTestId('history-error')).toContainText(/history not saved \(.*QuotaExceededError|history not saved \(.*quota/i);
  const shown = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  await setNumber(page, 'seed', 9);
  await waitIdle(page, info);
  await expect(item).toHaveCount(2);
  await item.nth(1).locator('.thumb').click();
  await expect(page.getByTestId('seed')).not.toHaveValue('9');
  expect(await pixels(page, 'image-baseline')).toEqual(shown.baseline);
  expect(await pixels(page, 'image-npo')).toEqual(shown.npo);
});

// A corrupt cache entry (disk damage, an interrupted write of an older version): the cached bytes are streamed and
// checked, the mismatch found at the end, the entry dropped and the file downloaded again while it is re-cached
// (src/model/source/url.ts). The page loads without an error and the cache ends up holding the right bytes.
test('a corrupt cache entry is dropped, the file downloaded again and cached correctly', async ({ page }, info) => {
  await openPlayground(page, info);
  const weights = manifest.files.reduce((a, b) => (b.bytes > a.bytes ? b : a)); // the largest: several chunks
  const where = { name: CACHE_NAME, key: `/__model-cache__/sha256/${weights.sha256}` }; // src/model/source/cache.ts
  /** The SHA-256 of the cached entry's bytes; `damage` first flips a byte near its end and stores it back. */
  const cachedHash = (damage: boolean) => page.evaluate(async ({ name, key, damage }) => {
    const cache = await caches.open(name);
    const url = new URL(key, location.origin).href;
    const bytes = new Uint8Array(await (await cache.match(url))!.arrayBuffer());
    if (damage) {
      bytes[bytes.length - 10] ^= 0xff; // in the last chunk: found only once the whole file was hashed
      await cache.put(url, new Response(bytes));
    }
    return [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
  }, { ...where, damage });
  expect(await cachedHash(false)).toBe(weights.sha256);
  expect(await cachedHash(true)).not.toBe(weights.sha256);

  const fetched: string[] = [];
  page.on('request', (r) => fetched.push(new URL(r.url()).pathname));
  const errors = await openPlayground(page, info);
  expect(errors).toEqual([]);
  await expect(page.getByTestId('error')).toHaveCount(0);
  expect(fetched.filter((path) => path.startsWith('/models/') && path !== '/models/manifest.json')).toEqual([`/models/${weights.path}`]);
  expect(await cachedHash(false)).toBe(weights.sha256);
});

// The control: with the ordinary quota the same page caches every file, so the quota test's empty cache and notice
// come from the quota and not from caching being off.
test('with the ordinary quota every model file is cached and no storage notice shows', async ({ page }, info) => {
  await openPlayground(page, info);
  expect(await cachedEntries(page)).toBe(manifest.files.length);
  const notices = await page.getByTestId('notice').allTextContents();
  expect(notices.join(' ')).not.toContain('storage');
});

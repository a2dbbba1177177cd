// Hostile files and what leaves the browser (docs/security.md), in the built app:
//   - every request of a whole session (load, generate, train, download) goes to the page's own origin;
//   - a model on another origin (`?model=`) loads, and the CSP still blocks any third origin;
//   - mutated files (the fuzzer's, each one the Node parser refuses) through every upload input each give an error,
//     and a generation afterwards still works and matches one before, pixel for pixel;
//   - a training that diverges (NaN) stops with the last good LoRA kept and downloadable.
import { expect, test, type Page } from '@playwright/test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, runOne } from '../src/fuzz/fuzz.ts';
import { targetByName } from '../src/fuzz/targets.ts';
import { readSafetensors } from '../src/lora/safetensors.ts';
import { parseManifest } from '../src/model/manifest.ts';
import { embeddedPairsPath } from './pairs-file.ts';
import { allowFor, backendOf, differingPixels, openPlayground, pixels, setNumber, waitIdle } from './helpers.ts';

// Runs in the wasm project only: nothing here depends on the backend (requests, CSP, parsers, the stop rule of
// training are the same code on both), and WebGPU on SwiftShader takes minutes per session.
test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'backend-independent: requests, CSP and parsers; covered on wasm'));

const manifest = parseManifest(readFileSync('models/manifest.json', 'utf8'));

/** The first `n` fuzz inputs of `target` (fixed seed) that the Node parser refuses: each must give an error on the page. */
async function refusedInputs(target: string, n: number, seed = 4242): Promise<Buffer[]> {
  const t = targetByName(target);
  const out: Buffer[] = [];
  for (let i = 0; out.length < n; i++) {
    const parts = generate(t, seed, i);
    if ((await runOne(t, parts, Infinity)).kind === 'rejected') out.push(Buffer.from(parts[0]));
  }
  return out;
}

/** Every URL the page and its workers request. */
function recordRequests(page: Page): string[] {
  const urls: string[] = [];
  page.context().on('request', (request) => urls.push(request.url()));
  return urls;
}

const foreign = (urls: string[], allowed: string[]) => urls.filter((u) => !u.startsWith('blob:') && !u.startsWith('data:') && !allowed.includes(new URL(u).origin));

test('a whole session (load, generate, train, download) requests nothing outside the page origin', async ({ page, baseURL }, info) => {
  const urls = recordRequests(page);
  await openPlayground(page, info);
  await page.getByTestId('pairs-file').setInputFiles(embeddedPairsPath());
  await page.getByTestId('train-steps').fill('1');
  await page.getByTestId('train-batch').fill('1');
  await page.getByTestId('train-rank').fill('2');
  await page.getByTestId('train').click();
  const training = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: 1, trainBatch: 1 });
  await expect(page.getByTestId('use-trained'), training.because).toBeVisible({ timeout: training.ms });
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-lora').click()]);
  expect(readSafetensors(new Uint8Array(readFileSync((await download.path())!))).tensors.size).toBeGreaterThan(0);
  expect(urls.some((u) => u.endsWith('/models/unet.onnx'))).toBe(true); // the recorder saw the worker's fetches
  expect(foreign(urls, [new URL(baseURL!).origin])).toEqual([]);
});

test('loading and generating requests nothing outside the page origin, and the CSP forbids inline script and eval', async ({ page, baseURL }, info) => {
  const urls = recordRequests(page);
  const response = await page.goto(`/?backend=${backendOf(info)}`);
  const csp = response!.headers()['content-security-policy'];
  expect(csp).toContain("connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co;"); // the Hub: only on "Prepare from the Hub"
  expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval';");
  await openPlayground(page, info);
  // Script the page itself would run (DevTools' own evaluation is exempt from CSP): an inline script and a string
  // timer (eval by another name) must not run.
  const ran = await page.evaluate(async () => {
    const w = window as unknown as { inline?: number; evaluated?: number };
    document.body.append(Object.assign(document.createElement('script'), { textContent: 'window.inline = 1' }));
    (setTimeout as (code: string, ms: number) => number)('window.evaluated = 1', 0);
    await new Promise((resolve) => setTimeout(resolve, 0)); // after any timer queued before it
    return [w.inline, w.evaluated];
  });
  expect(ran).toEqual([undefined, undefined]);
  expect(foreign(urls, [new URL(baseURL!).origin])).toEqual([]);
});

test('a model on another origin loads, and the CSP still blocks a third origin', async ({ page, baseURL }, info) => {
  const modelOrigin = 'http://models.example.test';
  // The model origin is simulated; it answers as a CORS-enabled static host would (COEP needs CORP or CORS).
  await page.context().route(`${modelOrigin}/**`, (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\/sd\//, '');
    return route.fulfill({ body: readFileSync(join('models', path)), headers: { 'Access-Control-Allow-Origin': '*', 'Cross-Origin-Resource-Policy': 'cross-origin' } });
  });
  const violations: string[] = [];
  await page.exposeFunction('reportViolation', (v: string) => violations.push(v));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { reportViolation(v: string): void }).reportViolation(`${e.violatedDirective} ${e.blockedURI}`)));
  const urls = recordRequests(page);
  await openPlayground(page, info, `&model=${encodeURIComponent(`${modelOrigin}/sd/`)}`);
  expect(urls.filter((u) => u.startsWith(`${modelOrigin}/sd/`)).length).toBeGreaterThanOrEqual(manifest.files.length + 1);
  expect(foreign(urls, [new URL(baseURL!).origin, modelOrigin])).toEqual([]);
  expect(await page.evaluate(() => fetch('http://elsewhere.example.test/x').then(() => 'fetched', () => 'blocked'))).toBe('blocked');
  await expect.poll(() => violations).toContain('connect-src http://elsewhere.example.test/x');
});

test('mutated files through every upload input each give an error, and the page still generates the same images', async ({ page }, info) => {
  const errors = await openPlayground(page, info, '&seed=42');
  const before = { baseline: await pixels(page, 'image-baseline'), npo: await pixels(page, 'image-npo') };
  const pairs = readFileSync(embeddedPairsPath());
  const error = page.getByTestId('train-error');
  // A valid pairs file clears the last error (and loads no LoRA), so each upload's own error is seen. A new name each
  // time: choosing the very same file again fires no change event.
  let cleared = 0;
  const clear = async () => {
    await page.getByTestId('pairs-file').setInputFiles({ name: `pairs-${cleared++}.json`, mimeType: 'application/json', buffer: pairs });
    await expect(error).toBeHidden();
  };
  const loras = [...await refusedInputs('lora-diffusers', 4), ...await refusedInputs('lora-kohya', 3), ...await refusedInputs('lora-peft', 3)];
  for (const [i, buffer] of loras.entries()) {
    for (const role of ['delta', 'eta'] as const) {
      await clear();
      await page.getByTestId(`lora-file-${role}`).setInputFiles({ name: `mutated-${i}.safetensors`, mimeType: 'application/octet-stream', buffer });
      await expect(error, `LoRA ${i} as ${role}`).toBeVisible();
      await expect(error).not.toBeEmpty();
    }
  }
  for (const [i, buffer] of (await refusedInputs('pairs', 8)).entries()) {
    await clear();
    await page.getByTestId('pairs-file').setInputFiles({ name: `mutated-${i}.json`, mimeType: 'application/json', buffer });
    // refused when chosen, by the trainer's own checks; the valid pairs chosen before stay the training set
    await expect(error, `pairs ${i}`).toContainText(`mutated-${i}.json was not loaded: `);
    await expect(page.getByTestId('train-status')).toHaveText(`pairs-${cleared - 1}.json loaded`);
  }
  // Generate again (another seed, then the first): the refused files changed nothing.
  await setNumber(page, 'seed', 43);
  await waitIdle(page, info);
  await setNumber(page, 'seed', 42);
  await waitIdle(page, info);
  expect(differingPixels(before.baseline, await pixels(page, 'image-baseline'))).toBe(0);
  expect(differingPixels(before.npo, await pixels(page, 'image-npo'))).toBe(0);
  expect(errors).toEqual([]);
});

test('an upload over the size limit is refused before it is read', async ({ page }, info) => {
  await openPlayground(page, info);
  // A 2 GiB + 1 file would not fit in this test's memory; Playwright streams a sparse file, and the page checks
  // File.size before reading, so nothing that large is ever read.
  const dir = mkdtempSync(join(tmpdir(), 'big-'));
  const path = join(dir, 'huge.safetensors');
  writeFileSync(path, '');
  const { truncateSync } = await import('node:fs');
  truncateSync(path, 2 ** 31 + 1);
  await page.getByTestId('lora-file-delta').setInputFiles(path);
  await expect(page.getByTestId('train-error')).toContainText('huge.safetensors is 2048 MiB; files over 2048 MiB are refused');
});

test('a training that diverges stops with the last good LoRA kept and downloadable', async ({ page }, info) => {
  await openPlayground(page, info);
  await page.getByTestId('pairs-file').setInputFiles(embeddedPairsPath());
  await page.getByTestId('train-steps').fill('4');
  await page.getByTestId('train-batch').fill('1');
  await page.getByTestId('train-rank').fill('2');
  await page.getByTestId('train-lr').fill('1e30'); // the first update sends the LoRA to ~1e30: the next loss is not finite
  await page.getByTestId('train').click();
  const training = await allowFor(page, info, { steps: 0, generations: 0, trainSteps: 4, trainBatch: 1 });
  await expect(page.getByTestId('train-message'), training.because).toContainText('training stopped', { timeout: training.ms });
  await expect(page.getByTestId('train-message')).toContainText('is kept');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-lora').click()]);
  const saved = readSafetensors(new Uint8Array(readFileSync((await download.path())!)));
  expect(saved.tensors.size).toBeGreaterThan(0);
  for (const [name, t] of saved.tensors) expect(t.data.every(Number.isFinite), name).toBe(true);
  await page.getByTestId('use-trained').click();
  await expect(page.getByTestId('train-message')).toContainText('as δ');
  await waitIdle(page, info);
});

// The first look (issue 31): a new visitor sees base vs base+NPO (η off) at the manifest's defaults, an opening scene
// the base model draws, and the held-out win rate of that comparison taken from docs/reproduce.json; η on shows the
// DPO comparison's own number; the sweep's rows follow (ω without η, α with it). Auto picks the backend that is fast
// here, and says why.
// WASM only: this is page logic over the same generate requests on both backends (WebGPU on SwiftShader is slow); the
// images are checked against Node's engine, as `npm run reproduce` samples base and base+npo.
import { expect, test, type Page } from '@playwright/test';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../src/model/manifest.ts';
import { scoreRgba } from '../src/share/score.ts';
import { allowFor, backendOf, expectSamePixels, generateInNode, pixels, waitIdle } from './helpers.ts';

test.beforeEach(({}, info) => test.skip(backendOf(info) === 'webgpu', 'page logic; covered on wasm'));

const report = JSON.parse(readFileSync('docs/reproduce.json', 'utf8')) as { rows: { config: string; winRate: Record<string, number>; winRateCI: Record<string, number[]> }[] };
const row = (config: string) => report.rows.find((r) => r.config === config)!;
const percent = (x: number) => Math.round(100 * x);

/** The embedded model without η (its δ kept): `npm run generate` on it samples base and base+npo, as reproduce does. */
function modelWithoutEta(): string {
  const dir = mkdtempSync(join(tmpdir(), 'no-eta-'));
  cpSync('models', dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  delete manifest.loras.eta;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return dir;
}

/** The claim line states this row's win rate and interval, as percentages, and carries the exact numbers. */
async function expectClaim(page: Page, config: string, against: string, words: string) {
  const { winRate, winRateCI } = row(config);
  const claim = page.getByTestId('comparison-claim');
  await expect(claim).toContainText(`${words} in ${percent(winRate[against])} % of comparisons (95 % interval ${percent(winRateCI[against][0])}–${percent(winRateCI[against][1])} %)`);
  await expect(claim).toHaveAttribute('data-win-rate', String(winRate[against]));
}

test('a new visitor sees base vs base+NPO at the defaults, a scene the base model draws, and the held-out win rate', async ({ page }, info) => {
  const d = parseManifest(readFileSync('models/manifest.json', 'utf8')).defaults;
  await page.goto('/?backend=wasm'); // the manifest's own settings, 20 steps
  await waitIdle(page, info, { load: true, steps: d.steps });
  const useEta = page.getByTestId('use-eta');
  await expect(useEta).not.toBeChecked();
  expect(new URL(page.url()).searchParams.get('eta')).toBe('off');
  await expect(page.getByTestId('prompt')).toHaveValue(d.prompt);
  await expect(page.getByTestId('seed')).toHaveValue(String(d.seed));
  for (const [slider, value] of [['omega', d.omega], ['alpha', d.alpha], ['beta', d.beta]] as const) {
    expect(Number(await page.getByTestId(`slider-${slider}`).inputValue())).toBe(value);
  }
  await expectClaim(page, 'base+npo', 'vsBase', 'base+NPO beats base');
  await expect(page.getByTestId('sweep-rows-axis')).toHaveValue('omega'); // α has nothing to scale without η

  // The images are base and base+npo: Node's engine on the model without η gives the same pixels.
  await expectSamePixels(page, info, generateInNode(modelWithoutEta(), { prompt: d.prompt, seed: d.seed, steps: d.steps, omega: d.omega, beta: d.beta, scheduler: d.scheduler }));
  // The opening scene was chosen (npm run rank:openings) where the base model draws it: the reward's fidelity ≥ 0.9.
  const base = scoreRgba(Uint8ClampedArray.from(await pixels(page, 'image-baseline')), 32, 32, d.prompt);
  expect(base.ok && base.scores.fidelity).toBeGreaterThanOrEqual(0.9);

  // η on: the DPO comparison, with its own held-out number.
  await useEta.click();
  await expect(useEta).toBeChecked();
  await waitIdle(page, info);
  await expectClaim(page, 'dpo+npo', 'vsDpo', 'DPO+NPO beats DPO');
  await expect(page.getByTestId('sweep-rows-axis')).toHaveValue('alpha');
  expect(new URL(page.url()).searchParams.get('eta')).toBe('on');
});

test('a LoRA of your own as δ takes the held-out sentence away (its numbers are the model\'s δ)', async ({ page }, info) => {
  await page.goto('/?backend=wasm&steps=2');
  await waitIdle(page, info, { load: true, steps: 2 });
  await expect(page.getByTestId('comparison-claim')).toBeVisible();
  await page.getByTestId('lora-file-delta').setInputFiles('models/eta.safetensors'); // any valid LoRA: here the model's η
  await expect(page.getByTestId('train-message')).toContainText('as δ');
  await expect(page.getByTestId('comparison-claim')).toBeHidden();
  await page.getByTestId('restore-loras').click();
  await expect(page.getByTestId('comparison-claim')).toBeVisible();
});

test('auto takes the fast backend here, and the badge says why', async ({ page }, info) => {
  await page.goto('/?steps=1');
  const budget = await allowFor(page, info, { load: true, steps: 1 });
  await expect(page.locator('main'), budget.because).toHaveAttribute('data-status', 'ready', { timeout: budget.ms });
  // What this browser's adapter is decides what auto must do: a software one (SwiftShader here) loses to WASM.
  const adapter = await page.evaluate(async () => {
    const found = await navigator.gpu?.requestAdapter();
    return found && { architecture: found.info.architecture, software: found.info.isFallbackAdapter || /swiftshader/i.test(found.info.architecture) };
  });
  const reason = page.getByTestId('backend-reason');
  if (!adapter || adapter.software) {
    await expect(page.getByTestId('backend')).toHaveText('wasm');
    await expect(reason).toContainText(adapter ? 'WebGPU adapter is software (SwiftShader)' : 'WebGPU unavailable');
  } else {
    await expect(page.getByTestId('backend')).toHaveText('webgpu');
    await expect(reason).toContainText('hardware adapter');
  }
});

// Playwright global setup (runs after the webServer is up, before any test): measures what a generation costs on this
// machine per backend, in headless Chromium against the built app with the embedded model, prints it, and writes
// reports/calibration.json, from which helpers.ts sizes every wait (calibration.ts). Per backend: open the page with
// 1 step (the first load), then one warm generation of 2 steps; the gap between its steps is one UNet call's cost.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { chromium, type FullConfig, type LaunchOptions, type Page } from '@playwright/test';
import { CALIBRATION_FILE, describeCalibration, type Backend, type BackendCost, type Calibration } from './calibration.ts';

/** Longest a backend's measurement may take before it is reported as failed (its budgets then use the fallback). */
const MEASURE_LIMIT_MS = 10 * 60_000;

type Stamped = { type: string; milliseconds?: number; t: number };

/** Records the worker's events with their arrival time, before any page script runs. */
async function stampWorkerEvents(page: Page) {
  await page.addInitScript(() => {
    const w = window as unknown as { Worker: typeof Worker; __calibration: Stamped[] };
    const Native = w.Worker;
    w.__calibration = [];
    w.Worker = class extends Native {
      constructor(url: string | URL, options?: WorkerOptions) {
        super(url, options);
        this.addEventListener('message', (e: MessageEvent<{ type: string; milliseconds?: number }>) => {
          if (['done', 'error', 'progress'].includes(e.data.type)) w.__calibration.push({ type: e.data.type, milliseconds: e.data.milliseconds, t: performance.now() });
        });
      }
    };
  });
}

/** Waits for the n-th 'done' event and returns its generation time; an 'error' event ends the measurement. */
async function nthDone(page: Page, n: number, timeout: number): Promise<number> {
  const handle = await page.waitForFunction((count) => {
    const events = (window as unknown as { __calibration: Stamped[] }).__calibration;
    const error = events.find((e) => e.type === 'error');
    if (error) return { error: true };
    const done = events.filter((e) => e.type === 'done');
    return done.length >= count ? { milliseconds: done[count - 1].milliseconds! } : undefined;
  }, n, { timeout, polling: 100 });
  const result = (await handle.jsonValue()) as { error?: boolean; milliseconds?: number };
  if (result.error) throw new Error(`the page reported: ${await page.getByTestId('error').textContent().catch(() => '?')}`);
  return result.milliseconds!;
}

async function regenerate(page: Page, field: 'seed' | 'steps', value: number) {
  await page.getByTestId(field).fill(String(value));
  await page.getByTestId(field).press('Enter');
}

async function measure(page: Page, baseURL: string, backend: Backend): Promise<BackendCost> {
  const deadline = Date.now() + MEASURE_LIMIT_MS;
  const left = () => Math.max(1, deadline - Date.now());
  await stampWorkerEvents(page);
  const opened = Date.now();
  await page.goto(`${baseURL}/?backend=${backend}&steps=1&seed=1`);
  await nthDone(page, 1, left());
  const firstLoadMs = Date.now() - opened;
  await regenerate(page, 'steps', 2);
  const two = await nthDone(page, 2, left());
  // One call: the time between the warm generation's two progress events (the worker reports a step once the GPU
  // has it, so the gap is one UNet call), kept within what the generation's total allows.
  const progress = await page.evaluate(() => (window as unknown as { __calibration: Stamped[] }).__calibration.filter((e) => e.type === 'progress').slice(-2).map((e) => e.t));
  const gap = progress.length === 2 ? progress[1] - progress[0] : two / 2;
  const unetCallMs = Math.min(two, Math.max(gap, two / 4));
  return { unetCallMs, overheadMs: Math.max(0, two - 2 * unetCallMs), firstLoadMs, generationMs: two };
}

export default async function globalSetup(config: FullConfig) {
  const project = (name: string) => config.projects.find((p) => p.name === name);
  const webgpu = project('webgpu') ?? config.projects[0];
  const baseURL = String(webgpu.use.baseURL);
  const launchOptions = (webgpu.use as { launchOptions?: LaunchOptions }).launchOptions ?? {};
  const calibration: Calibration = { measuredAt: new Date().toISOString(), cores: cpus().length, loadAverage: loadavg(), backends: {}, failures: {} };
  const browser = await chromium.launch(launchOptions);
  try {
    for (const backend of ['webgpu', 'wasm'] as const) {
      const page = await browser.newPage();
      try {
        calibration.backends[backend] = await measure(page, baseURL, backend);
      } catch (error) {
        calibration.failures[backend] = (error as Error).message.split('\n')[0];
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
  }
  mkdirSync(dirname(CALIBRATION_FILE), { recursive: true });
  writeFileSync(CALIBRATION_FILE, JSON.stringify(calibration, null, 2) + '\n');
  console.log(describeCalibration(calibration));
}

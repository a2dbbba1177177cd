// Browser e2e tests against the built app (vite build + vite preview), in real headless Chromium: WebGPU through
// SwiftShader (--enable-unsafe-webgpu) and the WASM path. The browser is found by itself: $CHROMIUM_PATH, then
// Debian's /usr/bin/chromium, then Playwright's own download (on machines where `npx playwright install` works).
import { existsSync } from 'node:fs';
import { defineConfig } from '@playwright/test';
import { TOUR_DISMISSED, TOUR_STORAGE_KEY } from './src/app/tour.ts';

const executablePath = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined);
const quietFlags = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const port = Number(process.env.E2E_PORT ?? 4178);
const baseURL = `http://127.0.0.1:${port}`;
// Every page opens as a returning visitor's, without the first-run tour (e2e/tour.spec.ts opens one without this).
const storageState = { cookies: [], origins: [{ origin: baseURL, localStorage: [{ name: TOUR_STORAGE_KEY, value: TOUR_DISMISSED }] }] };

// performance.measureUserAgentSpecificMemory (gpu-stability.spec.ts) otherwise waits for the next garbage collection
// Chromium schedules on its own, 10-20 s per call here; with this flag it collects and measures at once, as Chromium's
// own tests of the API do (https://web.dev/articles/monitor-total-page-memory-usage: "Local testing").
const eagerMemory = '--enable-blink-features=ForceEagerMeasureMemory';

const browser = (webgpu: boolean) => ({
  browserName: 'chromium' as const,
  launchOptions: { executablePath, args: [...quietFlags, eagerMemory, ...(webgpu ? ['--enable-unsafe-webgpu'] : [])] },
});

// Time: on 2 cores without a GPU, WebGPU is SwiftShader, about 20 s per UNet call of the embedded model and half a
// minute to open the page (ORT compiles its shaders on every visit); WASM is about 1 s per call. So the suite decides
// per spec where it runs (each spec's header says why), to keep `npm test` well under 45 minutes as specs are added:
// - both projects: what runs different code per backend: playground (merge kernels and the GPU-resident loop vs the
//   CPU's; on WebGPU the page-behaviour tests use the tiny fixture model), train (ORT's WebGPU vs WASM EP against
//   Node's losses; train-sd15 likewise for a prepared SD1.5 model, 3 steps on WebGPU), loading-errors' zero-LoRA test;
// - webgpu only: gpu-parity (runs both backends itself), gpu-stability (GPU buffer lifetimes, device loss);
// - wasm only: what does not depend on the backend (file checks, caching, storage quota, previews, pairs-file
//   validation), what needs many UNet calls (every scheduler at its usual 20-30 steps), and WASM threads;
// - no-webgpu: Chromium without WebGPU.
// New specs: run on WASM unless the test exercises backend-specific code; on WebGPU use 1 step or the tiny model.
// Waits: e2e/global-setup.ts measures this machine first (reports/calibration.json) and e2e/helpers.ts sizes every
// wait from it (waitIdle, openPlayground, allowFor); the fixed timeouts below only cover what does not scale with it.
export default defineConfig({
  testDir: 'e2e',
  // Prepared test models first (a few seconds), then the calibration that sizes every wait.
  globalSetup: ['./e2e/prepare-test-models.ts', './e2e/global-setup.ts'],
  timeout: 180_000,
  expect: { timeout: 60_000 },
  workers: 1,
  reporter: [['list'], ['json', { outputFile: 'reports/e2e.json' }]],
  use: { baseURL, storageState, trace: 'off' },
  webServer: {
    command: `npx vite build --logLevel warn && npx vite preview --port ${port} --strictPort --host 127.0.0.1`,
    url: `http://127.0.0.1:${port}/models/manifest.json`,
    timeout: 180_000,
    reuseExistingServer: false,
  },
  projects: [
    { name: 'webgpu', use: browser(true), metadata: { backend: 'webgpu', steps: 1 } /* SwiftShader: one step per generation */, testIgnore: /no-webgpu/ },
    { name: 'wasm', use: browser(true), metadata: { backend: 'wasm', steps: 6 }, testIgnore: /no-webgpu/ },
    { name: 'no-webgpu', use: browser(false), testMatch: /no-webgpu/ },
  ],
});

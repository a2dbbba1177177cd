// Browser e2e tests against the built app (vite build + vite preview), in real headless Chromium: WebGPU through
// SwiftShader (--enable-unsafe-webgpu) and the WASM path. The browser is found by itself: $CHROMIUM_PATH, then
// Debian's /usr/bin/chromium, then Playwright's own download (on machines where `npx playwright install` works).
import { existsSync } from 'node:fs';
import { defineConfig } from '@playwright/test';

const executablePath = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined);
const quietFlags = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
const port = Number(process.env.E2E_PORT ?? 4178);

const browser = (webgpu: boolean) => ({
  browserName: 'chromium' as const,
  launchOptions: { executablePath, args: [...quietFlags, ...(webgpu ? ['--enable-unsafe-webgpu'] : [])] },
});

export default defineConfig({
  testDir: 'e2e',
  // Prepared test models first (a few seconds), then the calibration that sizes every wait.
  globalSetup: ['./e2e/prepare-test-models.ts', './e2e/global-setup.ts'],
  timeout: 180_000,
  expect: { timeout: 60_000 },
  workers: 1,
  reporter: [['list'], ['json', { outputFile: 'reports/e2e.json' }]],
  use: { baseURL: `http://127.0.0.1:${port}`, trace: 'off' },
  webServer: {
    command: `npx vite build --logLevel warn && npx vite preview --port ${port} --strictPort --host 127.0.0.1`,
    url: `http://127.0.0.1:${port}/models/manifest.json`,
    timeout: 180_000,
    reuseExistingServer: false,
  },
  projects: [
    { name: 'webgpu', use: browser(true), metadata: { backend: 'webgpu', steps: 1 }, testIgnore: /no-webgpu/ },
    { name: 'wasm', use: browser(true), metadata: { backend: 'wasm', steps: 6 }, testIgnore: /no-webgpu/ },
    { name: 'no-webgpu', use: browser(false), testMatch: /no-webgpu/ },
  ],
});

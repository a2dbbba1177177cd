// Unit tests: plain TypeScript in Node (ORT via onnxruntime-node, WebGPU via the `webgpu` package).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', ['json', { outputFile: 'reports/unit.json' }]],
    // Lets Dawn (the `webgpu` package) find a Vulkan loader before the test processes start.
    globalSetup: ['src/gpu/vitest-global-setup.ts'],
    // Fails a test file whose main thread is blocked for good instead of hanging the run (see the file).
    setupFiles: ['src/gpu/vitest-stall-watchdog.ts'],
  },
});

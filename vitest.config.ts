// Unit tests: plain TypeScript in Node (ORT via onnxruntime-node, WebGPU via the `webgpu` package).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // A unit test's time limit only guards against a hang: it is not a speed check (benchmarks are), and the same
    // test takes 20× longer on a busy 2-core machine than on a quiet fast one. A test that timed out keeps running
    // beside the next one (vitest cannot cancel it): under load average ~25, gpu-engine.test.ts's first case timed
    // out at 120 s and the second, started beside it on the same ORT session, blocked for good. So the limits are
    // generous, and a thread blocked for good is caught by the stall watchdog.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    reporters: ['default', ['json', { outputFile: 'reports/unit.json' }]],
    // Lets Dawn (the `webgpu` package) find a Vulkan loader before the test processes start.
    globalSetup: ['src/gpu/vitest-global-setup.ts'],
    // Fails a test file whose main thread is blocked for good instead of hanging the run (see the file).
    setupFiles: ['src/gpu/vitest-stall-watchdog.ts'],
  },
});

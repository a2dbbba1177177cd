// Config for the stall watchdog's own test: runs the one blocking fixture with the watchdog as in vitest.config.ts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/gpu/testdata/stalled-main-thread.fixture.ts'],
    pool: 'forks',
    setupFiles: ['src/gpu/vitest-stall-watchdog.ts'],
  },
});

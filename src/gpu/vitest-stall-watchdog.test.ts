// The stall watchdog turns a test process blocked in Atomics.wait into a failed file with a message naming the test,
// where without it vitest would wait forever (the per-test timeout cannot fire on a blocked thread).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('vitest stall watchdog', () => {
  it('kills a test process whose main thread is blocked and names the test', () => {
    const run = spawnSync(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--config', 'src/gpu/testdata/stall.vitest.config.ts'],
      { encoding: 'utf8', env: { ...process.env, NPO_STALL_LIMIT_MS: '3000' }, timeout: 120_000 },
    );
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.signal, 'vitest itself must end, not be killed by the 120 s guard').toBeNull();
    expect(run.status).not.toBe(0);
    expect(output).toMatch(/\[stall-watchdog\].*"blocks the main thread forever"/);
  });
});

// A test file whose main thread blocks for good in Atomics.wait, as ORT's WebAssembly did (vitest-stall-watchdog.ts).
// Run only by vitest-stall-watchdog.test.ts, never by the suite (its name does not end in .test.ts).
import { it } from 'vitest';

it('blocks the main thread forever', () => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});

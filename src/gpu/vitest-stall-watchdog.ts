// Vitest setup file: turns a test process whose main thread is blocked for good into a failed test file with a message,
// instead of a test run that never ends.
//
// Why: onnxruntime-web's WebGPU build on Dawn in Node (src/worker/node-webgpu-ort.ts) was seen twice, on a machine with
// load average ~30, blocked in `Runtime_WasmI32AtomicWait` (an Atomics.wait inside ORT's WebAssembly). A blocked main
// thread cannot run vitest's per-test timeout, so `npm test` hung until CI's own limit. A worker thread can still see
// the stall: the main thread beats every second; when no beat has come for STALL_LIMIT_MS the watchdog names the
// running test on stderr and kills its own process, which vitest reports as that file's failure before going on.
//
// The limit is far above anything a healthy test does on a slow machine (the longest synchronous stretch in the suite
// is seconds), so it can only fire on a real stall.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeEach, expect } from 'vitest';

// NPO_STALL_LIMIT_MS exists for the watchdog's own test (vitest-stall-watchdog.test.ts).
const STALL_LIMIT_MS = Number(process.env.NPO_STALL_LIMIT_MS) || 10 * 60_000;
const BEAT_MS = 1_000;

const watchdogSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
let lastBeat = Date.now();
let current = '(before the first test)';
parentPort.on('message', (message) => {
  lastBeat = Date.now();
  if (message.test) current = message.test;
});
setInterval(() => {
  const silentMs = Date.now() - lastBeat;
  if (silentMs < workerData.limitMs) return;
  // writeSync on fd 2: a worker's process.stderr is relayed by the main thread, which is the one that is stuck.
  writeSync(2, '\\n[stall-watchdog] ' + workerData.file + ': the main thread has not run for ' +
    Math.round(silentMs / 1000) + ' s during "' + current + '"; killing this test process so the run can go on.\\n');
  process.kill(process.pid, 'SIGKILL');
}, Math.min(5_000, workerData.limitMs / 2));
`;

const watchdog = new Worker(watchdogSource, {
  eval: true,
  workerData: { limitMs: STALL_LIMIT_MS, file: expect.getState().testPath ?? 'a test file' },
});
watchdog.unref();
const beat = setInterval(() => watchdog.postMessage({}), BEAT_MS);
beat.unref();

beforeEach(() => {
  watchdog.postMessage({ test: expect.getState().currentTestName ?? '(unnamed test)' });
});

afterAll(async () => {
  clearInterval(beat);
  await watchdog.terminate();
});

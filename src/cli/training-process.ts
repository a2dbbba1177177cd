// Node only: the process `npm run train` runs in: the command runs again with glibc's malloc set as below (it reads the
// setting when a process starts) and with V8's gc() exposed, so the CLI can return the model's weight buffers the
// moment the training session holds its own copy instead of at V8's next major collection (a full-size SD1.5's
// float32 UNet and its float16 copy are 5.2 GB).
// With onnxruntime's CPU arena off (the trainer turns it off where the memory plan must bound the step, and always for
// fp16 weights) every value of a step is malloc'd and freed. glibc raises its mmap threshold each time a block it had
// mapped is freed (up to 32 MiB); from then on values below it come from the heap, whose free space fragments and stays
// resident. Fixing the threshold (which turns that adjustment off) maps each value of 1 MiB or more on its own and
// returns it when freed: one plan-check cell of the tiny SDXL export (64² latents, layers, fp16 weights) grew the
// process by 702 MB under glibc's default and by 179 MB with it (0.25 GiB in the grid's own run); the tiny SD1.5 at
// 64² by 3.01 vs 2.70 GB, in 125 vs 99 s (`npm run bench:train:sd -- --plan-check` runs its cells the same way).
import { spawnSync } from 'node:child_process';

export const TRAINING_MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: String(2 ** 20) };

/**
 * On Linux, runs this same command again with TRAINING_MALLOC_ENV and `--expose-gc` and returns its exit status; null
 * where this process already runs with them (or is not on Linux) and should go on. Other C libraries ignore the
 * variable.
 */
export function rerunForTraining(): number | null {
  if (process.platform !== 'linux' || Object.entries(TRAINING_MALLOC_ENV).every(([k, v]) => process.env[k] === v)) return null;
  const child = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, ...TRAINING_MALLOC_ENV } });
  if (child.error) throw child.error;
  return child.status ?? 1;
}

/** A full garbage collection now where the process was started with --expose-gc (rerunForTraining); else nothing. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

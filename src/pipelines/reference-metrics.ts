// How the pipeline tests compare with diffusers (issue 10's tolerances: final latents within 1e-3 relative L2, images
// ≥ 40 dB PSNR), and how they prepare a fixture export with the real CLI, as a user would.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readModelDirectory, type ModelDirectory } from './read-directory.ts';

/** ‖a − b‖ / ‖b‖ (lengths must agree). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`relL2: ${a.length} values against ${b.length}`);
  let [num, den] = [0, 0];
  for (let i = 0; i < a.length; i++) ((num += (a[i] - b[i]) ** 2), (den += b[i] ** 2));
  return Math.sqrt(num / den);
}

/** PSNR of two images in [−1, 1] after diffusers' postprocess (clamp to [0, 1]), peak 1. */
export function psnr(a: Float32Array, b: Float32Array): number {
  const unit = (v: number) => Math.min(1, Math.max(0, v / 2 + 0.5));
  const mse = a.reduce((sum, v, i) => sum + (unit(v) - unit(b[i])) ** 2, 0) / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

/** `npm run prepare-model -- --onnx <exportDir> …args` into a fresh temporary folder, read back. */
export function prepareFixture(exportDir: string, args: string[]): ModelDirectory {
  const out = mkdtempSync(join(tmpdir(), 'prepared-'));
  execFileSync('npx', ['tsx', 'src/cli/prepare-model.ts', '--onnx', exportDir, ...args, '--out', out], { stdio: 'pipe' });
  return readModelDirectory(out);
}

// Browser side of the Chromium check and benchmark (chromium-page.ts bundles this file into a page): runs the same
// merge cases as merge.test.ts on navigator.gpu and returns worst error / tolerance per case, or the benchmark rows.
// Not imported by the app.
import { acquireDevice } from './device.ts';
import { createMergeKernels } from './merge.ts';
import { isSoftwareAdapter, runMergeBench } from './merge-bench.ts';
import { createCaseRunner, makeCase, STANDARD_CASES } from './merge-check.ts';

export interface MergeCheckResult {
  name: string;
  worst: number; // ≤ 1 passes
  baseIntact: boolean;
}

export async function runMergeChecks() {
  const errors: string[] = [];
  const { device, hasF16, adapterInfo } = await acquireDevice(navigator.gpu, { onUncapturedError: (e) => errors.push(e.message) });
  const kernels = createMergeKernels(device);
  const split = createMergeKernels(device, { limits: { maxStorageBufferBindingSize: 600, maxComputeWorkgroupsPerDimension: 2 } });
  const runner = createCaseRunner(device);
  const results: MergeCheckResult[] = [];
  for (const { name, make } of STANDARD_CASES) results.push({ name, ...(await runner.check(kernels, make())) });
  for (const layout of ['out-in', 'in-out'] as const) {
    const c = makeCase(17, 33, layout, [4, 3], [0.5], 31);
    results.push({ name: `${layout} 17→33 split: 600-byte bindings, 2 workgroups/dim`, ...(await runner.check(split, c)) });
    if (hasF16) {
      const h = makeCase(33, 17, layout, [8, 3], [0.5], 71);
      results.push({ name: `${layout} 33→17 f16`, ...(await runner.check(kernels, h, 'f16')) });
    }
  }
  await device.queue.onSubmittedWorkDone();
  runner.destroy();
  kernels.destroy();
  split.destroy();
  device.destroy();
  const adapter = `${adapterInfo.vendor} / ${adapterInfo.architecture} ${adapterInfo.description}`.trim();
  return { adapter, hasF16, results, errors };
}

export async function runBench(iters?: number) {
  const { device, adapterInfo } = await acquireDevice(navigator.gpu);
  const software = isSoftwareAdapter(adapterInfo);
  const rows = await runMergeBench(device, iters ?? (software ? 4 : 50));
  device.destroy();
  return { adapter: `${adapterInfo.vendor} / ${adapterInfo.architecture} ${adapterInfo.description}`.trim(), software, rows };
}

export const mergeHarness = { runMergeChecks, runBench };
export type MergeHarness = typeof mergeHarness;
(globalThis as { mergeHarness?: MergeHarness }).mergeHarness = mergeHarness;

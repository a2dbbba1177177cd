// Browser side of the Chromium check (merge.chromium.test.ts) and benchmark (chromium-page.ts bundles this file into a
// page): runs the merge cases of chromium-cases.ts on navigator.gpu and returns worst error / tolerance per case, or
// the benchmark rows.
// Not imported by the app.
import { acquireDevice } from './device.ts';
import { createMergeKernels } from './merge.ts';
import { isSoftwareAdapter, runMergeBench } from './merge-bench.ts';
import { createCaseRunner } from './merge-check.ts';
import { CHROMIUM_CASES, SPLIT_LIMITS } from './chromium-cases.ts';

export interface MergeCheckResult {
  name: string;
  worst: number; // ≤ 1 passes
  baseIntact: boolean;
  othersIntact: boolean; // every bit of the output buffer outside W'
}

export async function runMergeChecks() {
  const errors: string[] = [];
  const { device, hasF16, adapterInfo } = await acquireDevice(navigator.gpu, { onUncapturedError: (e) => errors.push(e.message) });
  const kernels = createMergeKernels(device);
  const split = createMergeKernels(device, { limits: SPLIT_LIMITS });
  const runner = createCaseRunner(device);
  const results: MergeCheckResult[] = [];
  for (const { name, kind, make } of CHROMIUM_CASES) {
    results.push({ name, ...(await runner.check(kind === 'split' ? split : kernels, make())) });
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

// The merge kernel checked in real headless Chromium (WebGPU through SwiftShader without a GPU): the same cases,
// reference and tolerance as merge.test.ts (merge-check.ts). Exits non-zero unless every case is within tolerance.
// Run: `npm run test:gpu:chromium`.
import type { MergeHarness } from './chromium-harness.ts';
import { withHarnessPage } from './chromium-page.ts';

const failed = await withHarnessPage(async (page, version) => {
  const report = await page.evaluate(() => (globalThis as unknown as { mergeHarness: MergeHarness }).mergeHarness.runMergeChecks());
  console.log(`Chromium ${version}, adapter: ${report.adapter}, shader-f16: ${report.hasF16}`);
  if (!report.hasF16) console.log('f16 cases skipped: the adapter has no shader-f16');
  let failures = report.errors.length;
  for (const r of report.results) {
    const ok = r.worst <= 1 && r.baseIntact;
    if (!ok) failures++;
    console.log(`${ok ? 'ok  ' : 'FAIL'}  worst err/tol ${r.worst.toExponential(2)}  ${r.baseIntact ? '' : '(base overwritten) '}${r.name}`);
  }
  for (const e of report.errors) console.log(`FAIL  uncaptured GPU error: ${e}`);
  console.log(failures ? `${failures} failure(s)` : `all ${report.results.length} cases within tolerance`);
  return failures;
});
process.exitCode = failed ? 1 : 0;

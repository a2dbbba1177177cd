// merge.wgsl in real headless Chromium (WebGPU through SwiftShader without a GPU) against the float64 reference of
// merge-check.ts: the browser's WebGPU (Dawn inside Chromium, its WGSL front end and validation) can differ from Node's
// Dawn build, so the same cases are checked there too. One test per case of chromium-cases.ts; part of `npm test`.
// The browser: $CHROMIUM_PATH, else /usr/bin/chromium, else Playwright's own (see chromium-page.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_CASES } from './chromium-cases.ts';
import type { MergeHarness } from './chromium-harness.ts';
import { withHarnessPage } from './chromium-page.ts';

type Report = Awaited<ReturnType<MergeHarness['runMergeChecks']>>;
let report: Report;

/** Launches Chromium once and runs every case in one page: a launch costs seconds, a case milliseconds. */
async function runInChromium(): Promise<Report> {
  return withHarnessPage(async (page, version) => {
    const r = await page.evaluate(() => (globalThis as unknown as { mergeHarness: MergeHarness }).mergeHarness.runMergeChecks());
    const ratios = r.results.map((c) => c.worst.toExponential(1)).join(' ');
    console.log(`Chromium ${version}, adapter ${r.adapter}, shader-f16 ${r.hasF16}; worst err/tol per case: ${ratios}`);
    return r;
  });
}

// Generous: under `npm test` this file shares 2 cores with the other unit tests while Chromium starts.
beforeAll(async () => {
  report = await runInChromium();
});

describe('merge kernel in headless Chromium', () => {
  for (const { name } of CHROMIUM_CASES) {
    it(name, () => {
      const result = report.results.find((r) => r.name === name);
      expect(result, 'the page reported no result for this case').toBeDefined();
      expect(result!.worst, 'worst |error| / tolerance').toBeLessThanOrEqual(1);
      expect(result!.baseIntact, 'the base weight buffer is unchanged').toBe(true);
      expect(result!.othersIntact, 'the output buffer is unchanged outside W\'').toBe(true);
    });
  }

  it('raises no uncaptured GPU errors', () => {
    expect(report.errors).toEqual([]);
  });

  it('runs on a WebGPU adapter', () => {
    expect(report.adapter).not.toBe('');
    expect(report.results.length).toBe(CHROMIUM_CASES.length);
  });
});

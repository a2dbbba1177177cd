// The merge cases the Chromium check runs: chromium-harness.ts runs them in the page, merge.chromium.test.ts names one
// test per case from this same list (so a case the page never reported fails instead of vanishing). They are
// merge.test.ts's standard cases (float16 storage included: it needs no 'shader-f16', so it runs on Chromium's
// SwiftShader too) and the chunked/split plan forced by tiny limits.
import type { MergeLimits } from './merge.ts';
import { makeCase, STANDARD_CASES, type HostCase } from './merge-check.ts';

export interface ChromiumCase {
  name: string;
  kind: 'standard' | 'split';
  make: () => HostCase;
}

/** Limits small enough that a 17×33 merge must be split into several bindings and dispatches. */
export const SPLIT_LIMITS: Partial<MergeLimits> = { maxStorageBufferBindingSize: 600, maxComputeWorkgroupsPerDimension: 2 };

const splitCases = (layout: 'out-in' | 'in-out'): ChromiumCase[] => [
  { name: `${layout} 17→33 split: 600-byte bindings, 2 workgroups/dim`, kind: 'split', make: () => makeCase(17, 33, layout, [4, 3], [0.5], 31) },
  {
    name: `${layout} 17→33 f16 split, W' at odd element 563, W at odd element 9`,
    kind: 'split',
    make: () => ({ ...makeCase(17, 33, layout, [4, 3], [0.5], 32), dtype: 'f16', outOffset: 563, baseOffset: 9 }),
  },
];

export const CHROMIUM_CASES: ChromiumCase[] = [
  ...STANDARD_CASES.map((c) => ({ ...c, kind: 'standard' as const })),
  ...splitCases('out-in'),
  ...splitCases('in-out'),
];

// The page's storage sentences for a preparation: refused before writing with the bytes it needs and what is left.
import { describe, expect, it } from 'vitest';
import { quotaExceeded, storageShortfall } from './storage-quota.ts';

describe('storage quota sentences', () => {
  it('refuses files that do not fit what is left, naming the three numbers', () => {
    expect(storageShortfall(8_300_000, { quota: 10_000_000, usage: 5_200_000 })).toBe(
      'this model needs about 8.3 MB of browser storage; this site may use 10.0 MB and uses 5.2 MB, 4.8 MB left. Free space (remove prepared models or other site data) or choose float16 weights / a rank-r η, then prepare again');
  });

  it('lets through what fits, exactly up to what is left, and a browser that does not say its quota', () => {
    expect(storageShortfall(4_800_000, { quota: 10_000_000, usage: 5_200_000 })).toBeUndefined();
    expect(storageShortfall(4_800_001, { quota: 10_000_000, usage: 5_200_000 })).toMatch(/^this model needs about/);
    expect(storageShortfall(1e12, {})).toBeUndefined();
    // usage over quota (a quota lowered after writing): nothing is left, not a negative amount
    expect(storageShortfall(1, { quota: 100, usage: 200 })).toContain('0 B left');
  });

  it('says what a full storage allowed after a refused write', () => {
    expect(quotaExceeded({ quota: 2e9, usage: 1.5e9 })).toMatch(/^browser storage is full \(QuotaExceededError\): this site may use 2\.00 GB and uses 1\.50 GB; the model needs more than the 500\.0 MB left\./);
  });
});

// The page's held-out sentence: its numbers are docs/reproduce.json's (read here independently), it names the
// comparison shown, and it is given only for the embedded model with its own η and δ.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { heldOutClaim, opensWithEta } from './held-out.ts';
import type { ModelInfo } from '../worker/protocol.ts';

const report = JSON.parse(readFileSync('docs/reproduce.json', 'utf8'));
const manifest = JSON.parse(readFileSync('models/manifest.json', 'utf8'));
const embedded = { name: manifest.name, kind: 'embedded' } as ModelInfo;
const row = (config: string) => report.rows.find((r: { config: string }) => r.config === config);

describe('heldOutClaim', () => {
  it('η off: base+npo against base, with its win rate and interval', () => {
    const r = row('base+npo');
    const [winRate, winRateCI, beta, omega] = [r.winRate.vsBase, r.winRateCI.vsBase, r.beta, r.omega];
    const claim = heldOutClaim(embedded, false, false)!;
    expect(claim.winRate).toBe(winRate);
    expect(claim.interval).toEqual(winRateCI);
    expect(claim.sentence).toContain('the base model without NPO (left) and with NPO (right');
    expect(claim.sentence).toContain(`On ${report.prompts} held-out prompts × ${report.samples / report.prompts} seeds at β ${beta}, ω ${omega}, base+NPO beats base in ${Math.round(100 * winRate)} % of comparisons (95 % interval ${Math.round(100 * winRateCI[0])}–${Math.round(100 * winRateCI[1])} %)`);
  });

  it('η on: dpo+npo against dpo', () => {
    const r = row('dpo+npo');
    const claim = heldOutClaim(embedded, true, false)!;
    expect(claim.winRate).toBe(r.winRate.vsDpo);
    expect(claim.interval).toEqual(r.winRateCI.vsDpo);
    expect(claim.sentence).toContain(`at α ${r.alpha}, β ${r.beta}, ω ${r.omega}, DPO+NPO beats DPO in ${Math.round(100 * r.winRate.vsDpo)} %`);
  });

  it('says nothing for other models or for a LoRA of the person\'s own', () => {
    expect(heldOutClaim({ ...embedded, name: 'tiny-fixture' }, false, false)).toBeUndefined();
    expect(heldOutClaim({ ...embedded, kind: 'sd15' }, false, false)).toBeUndefined();
    expect(heldOutClaim(undefined, false, false)).toBeUndefined();
    expect(heldOutClaim(embedded, false, true)).toBeUndefined();
  });

  it('the measured model opens with η off, others with η on', () => {
    expect(opensWithEta(embedded)).toBe(false);
    expect(opensWithEta({ ...embedded, name: 'sd15-tiny', kind: 'sd15' })).toBe(true);
  });
});

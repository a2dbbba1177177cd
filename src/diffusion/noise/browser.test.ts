// Same seed, same bits: the generator is bundled with Vite and run in headless Chromium, on the page and in a
// dedicated Worker, and its fingerprints must equal Node's and the pinned NOISE_REFERENCE. Skipped only when no
// Chromium is installed ($CHROMIUM_PATH or /usr/bin/chromium).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NOISE_REFERENCE, noiseFingerprint } from './fingerprint.ts';

const chromiumPath = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : '');

async function bundle(): Promise<string> {
  const { build } = await import('vite');
  const entry = fileURLToPath(new URL('./fingerprint.ts', import.meta.url));
  const out = await build({
    configFile: false,
    logLevel: 'silent',
    build: { write: false, minify: false, lib: { entry, formats: ['iife'], name: 'NoiseFP', fileName: 'fp' } },
  });
  const result = Array.isArray(out) ? out[0] : out;
  if (!('output' in result)) throw new Error('unexpected vite build result');
  const chunk = result.output.find((o) => o.type === 'chunk');
  if (!chunk || chunk.type !== 'chunk') throw new Error('no bundle produced');
  return chunk.code;
}

describe('noise is bit-identical in Node, the page and a Worker', () => {
  it('Node matches the pinned reference', () => {
    for (const { seed, fingerprint } of NOISE_REFERENCE) expect(noiseFingerprint(seed)).toBe(fingerprint);
  });

  it.skipIf(!chromiumPath)('Chromium page and Worker match the reference', async () => {
    const code = await bundle();
    const { chromium } = await import('@playwright/test');
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless'] });
    try {
      const page = await browser.newPage();
      await page.setContent('<html><body></body></html>');
      await page.addScriptTag({ content: code });
      const seeds = NOISE_REFERENCE.map((r) => r.seed);
      const res = await page.evaluate(async ({ code, seeds }) => {
        const fp = (globalThis as unknown as { NoiseFP: { noiseFingerprint(s: number): string } }).NoiseFP;
        const inPage = seeds.map((s) => fp.noiseFingerprint(s));
        const src = `${code};onmessage=(e)=>postMessage(e.data.map((s)=>NoiseFP.noiseFingerprint(s)));`;
        const worker = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
        const inWorker = await new Promise<string[]>((resolve) => {
          worker.onmessage = (e) => resolve(e.data);
          worker.postMessage(seeds);
        });
        return { inPage, inWorker };
      }, { code, seeds });
      const expected = NOISE_REFERENCE.map((r) => r.fingerprint);
      expect(res.inPage).toEqual(expected);
      expect(res.inWorker).toEqual(expected);
    } finally {
      await browser.close();
    }
  });
});

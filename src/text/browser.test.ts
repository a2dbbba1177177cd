// The CLIP tokenizer bundled by Vite and run in headless Chromium, on the page and in a dedicated Worker (where the
// app tokenizes): the same ids as transformers' CLIPTokenizer (fixtures/clip/token-references.json), as in Node.
// Skipped only when no Chromium is installed ($CHROMIUM_PATH or /usr/bin/chromium).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTokenizerFiles } from './index.ts';

const chromiumPath = process.env.CHROMIUM_PATH || (existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : '');
const TOKENIZER_DIR = new URL('../../fixtures/sd15/export-diffusers/tokenizer/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, TOKENIZER_DIR), 'utf8');
const REFS = JSON.parse(readFileSync(new URL('../../fixtures/clip/token-references.json', import.meta.url), 'utf8')) as {
  sd15: { prompt: string; ids: number[] }[];
};

async function bundle(): Promise<string> {
  const { build } = await import('vite');
  const entry = fileURLToPath(new URL('./index.ts', import.meta.url));
  const out = await build({
    configFile: false,
    logLevel: 'silent',
    build: { write: false, minify: false, lib: { entry, formats: ['iife'], name: 'ClipText', fileName: 'clip' } },
  });
  const result = Array.isArray(out) ? out[0] : out;
  if (!('output' in result)) throw new Error('unexpected vite build result');
  const chunk = result.output.find((o) => o.type === 'chunk');
  if (!chunk || chunk.type !== 'chunk') throw new Error('no bundle produced');
  return chunk.code;
}

describe('CLIP tokenizer in headless Chromium', () => {
  it.skipIf(!chromiumPath)('the page and a Worker give transformers\' ids', async () => {
    const code = await bundle();
    const files = buildTokenizerFiles({ vocab: read('vocab.json'), merges: read('merges.txt'), tokenizerConfig: read('tokenizer_config.json'), specialTokensMap: read('special_tokens_map.json') });
    const prompts = REFS.sd15.map((r) => r.prompt);
    const { chromium } = await import('@playwright/test');
    const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless'] });
    try {
      const page = await browser.newPage();
      await page.setContent('<html><body></body></html>');
      await page.addScriptTag({ content: code });
      const res = await page.evaluate(async ({ code, files, prompts }) => {
        type Api = { createClipTokenizer(j: unknown, c: unknown): { encode(p: string): { ids: Int32Array } } };
        const api = (globalThis as unknown as { ClipText: Api }).ClipText;
        const tok = api.createClipTokenizer(files.tokenizerJson, files.tokenizerConfig);
        const inPage = prompts.map((p) => Array.from(tok.encode(p).ids));
        const src = `${code};onmessage=(e)=>{const t=ClipText.createClipTokenizer(e.data.files.tokenizerJson,e.data.files.tokenizerConfig);`
          + 'postMessage(e.data.prompts.map((p)=>Array.from(t.encode(p).ids)));};';
        const worker = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
        const inWorker = await new Promise<number[][]>((resolve, reject) => {
          worker.onmessage = (e) => resolve(e.data);
          worker.onerror = (e) => reject(new Error(e.message));
          worker.postMessage({ files, prompts });
        });
        return { inPage, inWorker };
      }, { code, files, prompts });
      const expected = REFS.sd15.map((r) => r.ids);
      expect(res.inPage).toEqual(expected);
      expect(res.inWorker).toEqual(expected);
    } finally {
      await browser.close();
    }
  });
});

// PNG text chunks: read what Pillow (A1111's writer) writes, write what Pillow reads back, and refuse damaged files
// with the offset named.
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePng } from '../world/png.ts';
import { PngError, readChunks, readPngText, withPngText } from './png-text.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const A1111 = 'a photo of a cat, masterpiece\nNegative prompt: ugly, blurry\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.0';
const small = () => encodePng(Float32Array.from({ length: 3 * 4 * 3 }, (_, i) => (i % 7) / 3.5 - 1), 4, 3);

describe('readPngText on Pillow-written files', () => {
  it('reads tEXt, iTXt (UTF-8) and zTXt (compressed)', async () => {
    expect((await readPngText(fixture('pil-text.png'))).get('parameters')).toBe(A1111);
    expect((await readPngText(fixture('pil-ztxt.png'))).get('parameters')).toBe(A1111);
    expect((await readPngText(fixture('pil-itxt.png'))).get('parameters')).toBe('ein Kätzchen 猫\nSteps: 4, Sampler: Euler a, CFG scale: 3.5, Seed: 7, Size: 4x3');
  });
});

describe('withPngText', () => {
  it('round-trips Latin-1 and Unicode text and keeps the image chunks byte for byte', async () => {
    const png = small();
    for (const text of ['plain, text: with "quotes"\nline 2', 'Kätzchen 猫 🐈']) {
      const out = withPngText(png, 'parameters', text);
      expect((await readPngText(out)).get('parameters')).toBe(text);
      const types = readChunks(out).map((c) => c.type);
      expect(types).toEqual(['IHDR', /猫/.test(text) ? 'iTXt' : 'tEXt', 'IDAT', 'IEND']);
      const idat = (b: Uint8Array) => readChunks(b).find((c) => c.type === 'IDAT')!.data;
      expect(idat(out)).toEqual(idat(png));
    }
  });

  it('replaces an existing chunk of the same keyword', async () => {
    const twice = withPngText(withPngText(small(), 'parameters', 'first'), 'parameters', 'second');
    expect(readChunks(twice).filter((c) => c.type === 'tEXt')).toHaveLength(1);
    expect((await readPngText(twice)).get('parameters')).toBe('second');
  });

  const python = spawnSync('/usr/bin/python3', ['-c', 'import PIL'], { encoding: 'utf8' });
  it.skipIf(python.status !== 0)('Pillow reads back what it writes (tEXt and iTXt)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'png-text-'));
    const texts = ['a red square\nSteps: 20, Sampler: DDIM, CFG scale: 5, Seed: 42', 'Kätzchen 猫\nSteps: 2'];
    texts.forEach((t, i) => writeFileSync(join(dir, `${i}.png`), withPngText(small(), 'parameters', t)));
    const read = spawnSync('/usr/bin/python3', ['-c', `
import json, sys
from PIL import Image
print(json.dumps([Image.open(sys.argv[1] + f"/{i}.png").info["parameters"] for i in range(2)]))`, dir], { encoding: 'utf8' });
    expect(read.stderr).toBe('');
    expect(JSON.parse(read.stdout)).toEqual(texts);
  });
});

describe('hostile input', () => {
  const png = () => withPngText(small(), 'parameters', 'hello');
  it('refuses a file that is not a PNG', () => {
    expect(() => readChunks(new TextEncoder().encode('GIF89a, not a png'))).toThrow(/PNG signature/);
  });
  it('refuses a truncated file, naming the offset', () => {
    const bytes = png();
    expect(() => readChunks(bytes.subarray(0, bytes.length - 20))).toThrow(PngError);
    expect(() => readChunks(bytes.subarray(0, 20))).toThrow(/byte 8/);
  });
  it('refuses a chunk length past the end of the file', () => {
    const bytes = png().slice();
    new DataView(bytes.buffer).setUint32(8, 0x7fffffff);
    expect(() => readChunks(bytes)).toThrow(/claims 2147483647 bytes/);
  });
  it('refuses a damaged chunk by its CRC', () => {
    const bytes = png().slice();
    bytes[45] ^= 0xff; // inside the tEXt data
    expect(() => readChunks(bytes)).toThrow(/CRC/);
  });
  it('refuses a text chunk without its NUL separator', async () => {
    const bytes = png();
    const t = readChunks(bytes).find((c) => c.type === 'tEXt')!;
    const broken = bytes.slice();
    broken.fill(0x41, t.offset + 8, t.offset + 8 + t.data.length); // keyword and text without NUL
    // Fix the CRC so only the missing NUL is wrong.
    const { crc32 } = await import('./crc32.ts');
    new DataView(broken.buffer).setUint32(t.offset + 8 + t.data.length, crc32(broken.subarray(t.offset + 4, t.offset + 8 + t.data.length)));
    await expect(readPngText(broken)).rejects.toThrow(/NUL/);
  });
  it('refuses an invalid keyword on writing', () => {
    expect(() => withPngText(small(), '', 'x')).toThrow(/keyword/);
  });
});

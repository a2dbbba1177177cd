// Pair sources against the real tools: resize + centre crop equal Pillow's (diffusers' DPO transforms, reference by
// scripts/fixtures/make_pair_sources.py with Debian's Pillow 9.4), the image folder, its zip and a Pick-a-Pic shard
// written by pyarrow give the expected pairs, and broken inputs fail with errors naming the file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImageNode, folderFilesNode } from './decode-node.ts';
import { prepareTrainingImage, resizedSize, trainingCrop } from './image-prep.ts';
import { pairsFromFolder, pairsFromParquet, pairsFromZip, type FolderFiles, type PairSourceOptions } from './pair-sources.ts';
import { parsePairs, PairsError } from './pairs.ts';

const DIR = 'fixtures/pair-sources';
const read = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));
const options = (size: number, extra: Partial<PairSourceOptions> = {}): PairSourceOptions => ({ size, decode: decodeImageNode, ...extra });
const asyncBuffer = (bytes: Uint8Array) => ({ byteLength: bytes.byteLength, slice: (s: number, e?: number) => bytes.slice(s, e).buffer });
const bytesOf = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
};

describe('image preparation (Resize + CenterCrop as train_diffusion_dpo.py)', () => {
  const reference: { cases: { image: string; size: number; rgb: number[] }[] } = JSON.parse(readFileSync(join(DIR, 'prep-reference.json'), 'utf8'));

  it('equals Pillow byte for byte on PNG and lossless WebP, at every size (shrink, enlarge, odd crop offsets)', async () => {
    const lossless = reference.cases.filter((c) => !c.image.endsWith('.jpg'));
    expect(lossless.length).toBe(18);
    for (const c of lossless) {
      const prepared = prepareTrainingImage(await decodeImageNode(read(`images/${c.image}`), c.image), c.size);
      expect(maxDiff(prepared, c.rgb), `${c.image} at ${c.size}`).toBe(0);
    }
  });

  it('is within 1 level of Pillow on JPEG (sharp and Pillow both decode with libjpeg-turbo: 0 measured; 1 allowed for other builds)', async () => {
    for (const c of reference.cases.filter((c) => c.image.endsWith('.jpg'))) {
      const prepared = prepareTrainingImage(await decodeImageNode(read(`images/${c.image}`), c.image), c.size);
      expect(maxDiff(prepared, c.rgb), `${c.image} at ${c.size}`).toBeLessThanOrEqual(1);
    }
  });

  it("records the original size and CenterCrop's offsets (SDXL's time_ids) with the script's int(round((resized − size) / 2.0)), halves to even", () => {
    expect(trainingCrop(37, 23, 21)).toEqual({ width: 37, height: 23, cropTop: 0, cropLeft: 6 }); // resized 33×21: (33 − 21)/2 = 6
    expect(trainingCrop(20, 50, 21)).toEqual({ width: 20, height: 50, cropTop: 16, cropLeft: 0 }); // 21×52: round(15.5) = 16
    expect(trainingCrop(20, 33, 21)).toEqual({ width: 20, height: 33, cropTop: 6, cropLeft: 0 }); // 21×34: round(6.5) = 6
    expect(trainingCrop(64, 64, 16)).toEqual({ width: 64, height: 64, cropTop: 0, cropLeft: 0 });
  });

  it("sizes the shorter side as torchvision's Resize(int)", () => {
    expect(resizedSize(37, 23, 21)).toEqual({ width: 33, height: 21 });
    expect(resizedSize(20, 50, 21)).toEqual({ width: 21, height: 52 });
    expect(resizedSize(64, 64, 16)).toEqual({ width: 16, height: 16 });
  });
});

describe('image folder and zip', () => {
  it('reads metadata.jsonl rows into pairs, chosen as the preferred image, at the training size', async () => {
    const set = await pairsFromFolder(await folderFilesNode(join(DIR, 'folder')), 'folder', options(16));
    expect(set.file.pairs.map((p) => p.prompt)).toEqual(['a red square', 'a blue circle']);
    const chosen = prepareTrainingImage(await decodeImageNode(read('folder/good/0.png'), 'good/0.png'), 16);
    expect(maxDiff(bytesOf(set.file.pairs[0].a.data), chosen)).toBe(0);
    expect(set.file.pairs.every((p) => p.preferred === 'a')).toBe(true);
    // the chosen images' sources: good/0.png is 40×24 (resized 26×16, crop left 5), good/1.webp 32×32 (no crop)
    expect(set.file.pairs.map((p) => p.source)).toEqual([{ width: 40, height: 24, cropTop: 0, cropLeft: 5 }, { width: 32, height: 32, cropTop: 0, cropLeft: 0 }]);
    // and training reads it as any pairs.json
    const pairs = parsePairs(JSON.stringify(set.file), { width: 16, height: 16 });
    expect(pairs[0].winner[0]).toBeCloseTo(chosen[0] / 127.5 - 1, 6);
    expect(pairs[0].source).toEqual(set.file.pairs[0].source);
  });

  it('reads the same set from a zip with metadata.csv in a subfolder', async () => {
    const fromFolder = await pairsFromFolder(await folderFilesNode(join(DIR, 'folder')), 'folder', options(16));
    const fromZip = await pairsFromZip(read('pairs.zip'), 'pairs.zip', options(16));
    expect(fromZip.file).toEqual(fromFolder.file);
  });

  it('stops at maxPairs and says so', async () => {
    const set = await pairsFromZip(read('pairs.zip'), 'pairs.zip', options(8, { maxPairs: 1 }));
    expect(set.file.pairs).toHaveLength(1);
    expect(set.notes[0]).toBe('the first 1 pairs of 2 pairs (the limit asked for)');
  });

  const folderWith = async (changes: Record<string, string | Uint8Array>): Promise<FolderFiles> => {
    const files = new Map(await folderFilesNode(join(DIR, 'folder')));
    for (const [name, content] of Object.entries(changes)) {
      files.set(name, async () => (typeof content === 'string' ? new TextEncoder().encode(content) : content));
    }
    return files;
  };
  const failure = async (promise: Promise<unknown>) => {
    const error = await promise.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PairsError);
    return (error as Error).message;
  };

  it('names a broken image, a missing file, a bad metadata line and a path outside the set', async () => {
    const truncated = read('folder/bad/1.png').slice(0, 200);
    expect(await failure(pairsFromFolder(await folderWith({ 'bad/1.png': truncated }), 'my-set', options(16))))
      .toMatch(/^my-set: bad\/1\.png: cannot be decoded as a PNG, JPEG or WebP image/);
    const noFile = '{"prompt":"x","chosen":"good/0.png","rejected":"bad/9.png"}\n';
    expect(await failure(pairsFromFolder(await folderWith({ 'metadata.jsonl': noFile }), 'my-set', options(16))))
      .toBe('my-set: metadata.jsonl line 1: the file "bad/9.png" is not in my-set');
    const badLine = '{"prompt":"x","chosen":"good/0.png","rejected":"bad/1.png"}\n{"prompt": 3}\n';
    expect(await failure(pairsFromFolder(await folderWith({ 'metadata.jsonl': badLine }), 'my-set', options(16))))
      .toBe('my-set: metadata.jsonl line 2: "prompt" must be a string');
    const notJson = '{"prompt":"x",\n';
    expect(await failure(pairsFromFolder(await folderWith({ 'metadata.jsonl': notJson }), 'my-set', options(16))))
      .toMatch(/^my-set: metadata\.jsonl line 1 is not JSON/);
    const outside = '{"prompt":"x","chosen":"../../secret.png","rejected":"bad/1.png"}\n';
    expect(await failure(pairsFromFolder(await folderWith({ 'metadata.jsonl': outside }), 'my-set', options(16))))
      .toBe('my-set: metadata.jsonl line 1: the file name "../../secret.png" points outside the pair set');
    const noMetadata = new Map([...(await folderFilesNode(join(DIR, 'folder')))].filter(([k]) => !k.startsWith('metadata')));
    expect(await failure(pairsFromFolder(noMetadata, 'my-set', options(16)))).toMatch(/^my-set: no metadata\.jsonl or metadata\.csv/);
  });

  it('names the CSV problem: a missing column, a field count, an unclosed quote', async () => {
    const csv = (text: string) => pairsFromFolder(new Map([...[['metadata.csv', async () => new TextEncoder().encode(text)] as const]]), 'set', options(8));
    expect(await failure(csv('prompt,chosen\nx,a.png\n'))).toBe('set: metadata.csv: the header has no "rejected" column (it has "prompt", "chosen")');
    expect(await failure(csv('prompt,chosen,rejected\n"a, b",c.png\n'))).toBe('set: metadata.csv record 2: 2 fields; the header has 3');
    expect(await failure(csv('prompt,chosen,rejected\n"a,b.png,c.png\n'))).toMatch(/^set: metadata\.csv: a quoted field opened on or before line 3 is never closed/);
  });

  it('refuses damaged and hostile zips with the entry named', async () => {
    const zip = read('pairs.zip');
    expect(await failure(pairsFromZip(zip.slice(0, zip.length - 30), 'pairs.zip', options(8)))).toMatch(/^pairs\.zip: not a zip file/);
    // the central directory's offset pointed past the end of the file
    const eocd = zip.length - 22;
    const farDir = zip.slice();
    new DataView(farDir.buffer).setUint32(eocd + 16, zip.length + 10, true);
    expect(await failure(pairsFromZip(farDir, 'pairs.zip', options(8)))).toMatch(/^pairs\.zip: the central directory .* runs past the end of the file/);
    // a flipped byte in good/0.png's compressed data: inflate or the CRC catches it, and the message names the entry
    const { openZip } = await import('./zip.ts');
    const entry = openZip(zip, 'pairs.zip').entries.get('pairs/good/0.png')!;
    const view = new DataView(zip.buffer, zip.byteOffset);
    const dataStart = entry.localHeaderOffset + 30 + view.getUint16(entry.localHeaderOffset + 26, true) + view.getUint16(entry.localHeaderOffset + 28, true);
    const corrupt = zip.slice();
    corrupt[dataStart + Math.floor(entry.compressedSize / 2)] ^= 0x5a;
    expect(await failure(pairsFromZip(corrupt, 'pairs.zip', options(8)))).toMatch(/^pairs\.zip: pairs\/good\/0\.png: (CRC-32 mismatch|cannot be decompressed|inflates to more)/);
    // a directory entry that claims fewer bytes than the data inflates to (a bomb's trick) stops at the claim
    const lying = zip.slice();
    const central = findCentral(lying, 'pairs/good/0.png');
    new DataView(lying.buffer).setUint32(central + 24, 100, true);
    expect(await failure(pairsFromZip(lying, 'pairs.zip', options(8)))).toBe('pairs.zip: pairs/good/0.png: inflates to more than the 100 bytes the directory declares');
  });
});

/** Offset of the central-directory record of `name`. */
function findCentral(zip: Uint8Array, name: string): number {
  const view = new DataView(zip.buffer, zip.byteOffset);
  for (let p = 0; p + 46 < zip.length; p++) {
    if (view.getUint32(p, true) !== 0x02014b50) continue;
    const length = view.getUint16(p + 28, true);
    if (new TextDecoder().decode(zip.subarray(p + 46, p + 46 + length)) === name) return p;
  }
  throw new Error(`${name} not in the zip`);
}

describe('Pick-a-Pic parquet shard (pyarrow, snappy)', () => {
  const reference: { size: number; pairs: { prompt: string; winner: number[]; loser: number[] }[] } = JSON.parse(readFileSync(join(DIR, 'pickapic-reference.json'), 'utf8'));

  it('drops ties, orders each pair by label_0, and prepares the JPEGs as Pillow (within 1 level)', async () => {
    const set = await pairsFromParquet(asyncBuffer(read('pickapic.parquet')), 'shard.parquet', options(reference.size));
    expect(set.notes).toEqual(['1 tie dropped']);
    expect(set.file.pairs.map((p) => p.prompt)).toEqual(reference.pairs.map((p) => p.prompt));
    set.file.pairs.forEach((pair, i) => {
      expect(maxDiff(bytesOf(pair.a.data), reference.pairs[i].winner)).toBeLessThanOrEqual(1);
      expect(maxDiff(bytesOf(pair.b.data), reference.pairs[i].loser)).toBeLessThanOrEqual(1);
    });
    // time_ids come from jpg_0 whichever image won (train_diffusion_dpo_sdxl.py): row 0's jpg_0 (the winner) is 40×30,
    // row 2's (the loser; its jpg_1 is 36×36) 30×40 → resized 16×21, crop top round(2.5) = 2
    expect(set.file.pairs.map((p) => p.source)).toEqual([{ width: 40, height: 30, cropTop: 0, cropLeft: 2 }, { width: 30, height: 40, cropTop: 2, cropLeft: 0 }]);
  });

  it('names a truncated shard, a file without the columns, and a broken image with its row', async () => {
    const shard = read('pickapic.parquet');
    const failure = async (bytes: Uint8Array) => (await pairsFromParquet(asyncBuffer(bytes), 'shard.parquet', options(8)).then(() => undefined, (e: Error) => e))!;
    expect((await failure(shard.slice(0, shard.length - 100))).message).toMatch(/^shard\.parquet: not a readable parquet file/);
    const broken = await failure(read('pickapic-broken-image.parquet'));
    expect(broken.message).toMatch(/^shard\.parquet row 2, jpg_1: cannot be decoded as a PNG, JPEG or WebP image/);
    expect((await failure(read('not-pickapic.parquet'))).message).toBe('shard.parquet: not a Pick-a-Pic shard, it has no columns jpg_0, jpg_1, label_0, label_1');
  });
});

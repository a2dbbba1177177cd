// The dataset export read back by our reader (hyparquet): columns and types as Pick-a-Pic's, the source files' own
// bytes, labels (and --reverse) as train_diffusion_dpo.py reads them, ties left out, shards and row groups, pairs.json
// pixels as PNG that decodes to the same bytes, the card's front matter, the zip the page downloads. The Python side
// (parquet-wasm reader, the script's own preprocessing and training) is scripts/fixtures/check_diffusers_roundtrip.py.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ByteWriter } from 'hyparquet-writer';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { decodeImageNode, folderFilesNode } from './decode-node.ts';
import { datasetCard, rowsFromEncodedPairs, rowsFromPairsJson, shardPath, writeDatasetShards, type DatasetRow, type DatasetSummary } from './dataset-export.ts';
import { encodedPairsFromFolder, encodedPairsFromParquet, pairsFromParquet, PARQUET_DECOMPRESSORS } from './pair-sources.ts';
import { encodePairs, PairsError } from './pairs.ts';
import { openZip } from './zip.ts';
import { writeZip } from './zip-writer.ts';

const DIR = 'fixtures/pair-sources';
const read = (name: string) => new Uint8Array(readFileSync(join(DIR, name)));
const asyncBuffer = (bytes: Uint8Array) => ({ byteLength: bytes.byteLength, slice: (s: number, e?: number) => bytes.slice(s, e).buffer });

/** Writes rows into in-memory shards; returns each shard's bytes. */
async function exportRows(rows: AsyncIterable<DatasetRow>, options: { reverse?: boolean; shardRows?: number; shardBytes?: number } = {}) {
  const writers: ByteWriter[] = [];
  const counts = await writeDatasetShards(rows, {
    reverse: options.reverse ?? false, shardRows: options.shardRows, shardBytes: options.shardBytes,
    openShard: () => { writers.push(new ByteWriter()); return writers.at(-1)!; },
  });
  return { counts, shards: writers.map((w) => new Uint8Array(w.getBuffer())) };
}

/** A caption as text: hyparquet gives UTF8-annotated columns as strings, other byte arrays as bytes. */
const text = (v: unknown) => (typeof v === 'string' ? v : new TextDecoder().decode(v as Uint8Array));
const readRows = (shard: Uint8Array) => parquetReadObjects({ file: asyncBuffer(shard), utf8: false, compressors: PARQUET_DECOMPRESSORS });

async function* syntheticRows(n: number, imageBytes = 10): AsyncGenerator<DatasetRow> {
  for (let i = 0; i < n; i++) {
    const image = new Uint8Array(imageBytes).fill(i % 256);
    image.set([0x89, 0x50, 0x4e, 0x47]);
    yield { caption: `prompt ${i}`, jpg0: image, jpg1: image.slice().reverse(), label0: (i % 2) as 0 | 1 };
  }
}

describe('Pick-a-Pic shard → dataset', () => {
  it("keeps the shard's columns, images byte for byte and labels; leaves the tie out; reads back with hyparquet", async () => {
    const source = await encodedPairsFromParquet(asyncBuffer(read('pickapic.parquet')), 'pickapic.parquet');
    const { counts, shards } = await exportRows(rowsFromEncodedPairs(source));
    expect(counts).toEqual([2]);
    expect(source.ties()).toBe(1);
    const original = (await parquetReadObjects({ file: asyncBuffer(read('pickapic.parquet')), utf8: false, compressors: PARQUET_DECOMPRESSORS }))
      .filter((r) => r.label_0 !== 0.5);
    const exported = await readRows(shards[0]);
    expect(exported).toHaveLength(2);
    for (const [i, row] of exported.entries()) {
      expect(text(row.caption)).toBe(text(original[i].caption));
      expect(row.jpg_0).toEqual(original[i].jpg_0);
      expect(row.jpg_1).toEqual(original[i].jpg_1);
      expect([row.label_0, row.label_1]).toEqual([original[i].label_0, original[i].label_1]);
    }
  });

  it("has Pick-a-Pic's schema (caption UTF8, jpg_0/jpg_1 plain binary, labels double) and datasets' features key", async () => {
    const source = await encodedPairsFromParquet(asyncBuffer(read('pickapic.parquet')), 'pickapic.parquet');
    const { shards } = await exportRows(rowsFromEncodedPairs(source));
    const meta = parquetMetadata(shards[0].buffer as ArrayBuffer);
    const columns = Object.fromEntries(meta.schema.slice(1).map((s) => [s.name, { type: s.type, converted: s.converted_type }]));
    expect(columns).toEqual({
      caption: { type: 'BYTE_ARRAY', converted: 'UTF8' }, jpg_0: { type: 'BYTE_ARRAY', converted: undefined },
      jpg_1: { type: 'BYTE_ARRAY', converted: undefined }, label_0: { type: 'DOUBLE', converted: undefined }, label_1: { type: 'DOUBLE', converted: undefined },
    });
    const hf = JSON.parse(meta.key_value_metadata!.find((kv) => kv.key === 'huggingface')!.value!);
    expect(hf.info.features.jpg_0).toEqual({ dtype: 'binary', _type: 'Value' });
  });

  it('--reverse flips the labels, so our own training reader sees winner and loser swapped', async () => {
    const exported = async (reverse: boolean) => {
      const source = await encodedPairsFromParquet(asyncBuffer(read('pickapic.parquet')), 'pickapic.parquet');
      return (await exportRows(rowsFromEncodedPairs(source), { reverse })).shards[0];
    };
    const [plain, reversed] = [await exported(false), await exported(true)];
    const labels = async (shard: Uint8Array) => (await readRows(shard)).map((r) => [r.label_0, r.label_1]);
    expect(await labels(reversed)).toEqual((await labels(plain)).map(([l0, l1]) => [l1, l0]));
    const asPairs = (shard: Uint8Array) => pairsFromParquet(asyncBuffer(shard), 'exported.parquet', { size: 16, decode: decodeImageNode });
    const [plainPairs, reversedPairs] = [await asPairs(plain), await asPairs(reversed)];
    // the plain export trains as the source does: pickapic-reference.json holds Pillow's winner/loser of its pairs
    const reference: { pairs: { winner: number[]; loser: number[] }[] } = JSON.parse(readFileSync(join(DIR, 'pickapic-reference.json'), 'utf8'));
    const source = await pairsFromParquet(asyncBuffer(read('pickapic.parquet')), 'pickapic.parquet', { size: 16, decode: decodeImageNode });
    expect(plainPairs.file.pairs.map((p) => [p.a.data, p.b.data])).toEqual(source.file.pairs.map((p) => [p.a.data, p.b.data]));
    expect(plainPairs.file.pairs).toHaveLength(reference.pairs.length);
    plainPairs.file.pairs.forEach((pair, i) => {
      expect(reversedPairs.file.pairs[i].a.data).toBe(pair.b.data);
      expect(reversedPairs.file.pairs[i].b.data).toBe(pair.a.data);
    });
  });
});

describe('image folder → dataset', () => {
  it('writes the chosen file as jpg_0 (label_0 = 1) with its own bytes', async () => {
    const source = await encodedPairsFromFolder(await folderFilesNode(join(DIR, 'folder')), 'folder');
    const rows = await readRows((await exportRows(rowsFromEncodedPairs(source))).shards[0]);
    const metadata = readFileSync(join(DIR, 'folder/metadata.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.map((r) => [r.label_0, r.label_1])).toEqual([[1, 0], [1, 0]]);
    rows.forEach((row, i) => {
      expect(row.jpg_0).toEqual(read(`folder/${metadata[i].chosen}`));
      expect(row.jpg_1).toEqual(read(`folder/${metadata[i].rejected}`));
    });
  });

  it('refuses a file PIL could not open, naming it, before writing its row', async () => {
    const files = new Map(await folderFilesNode(join(DIR, 'folder')));
    const metadata = readFileSync(join(DIR, 'folder/metadata.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    files.set(metadata[1].rejected, async () => new TextEncoder().encode('not an image'));
    const source = await encodedPairsFromFolder(files, 'folder');
    await expect(exportRows(rowsFromEncodedPairs(source))).rejects.toThrow(new RegExp(`folder: ${metadata[1].rejected}: not a PNG, JPEG or WebP`));
  });
});

describe('pairs.json → dataset', () => {
  it('encodes each image as a PNG that decodes to the same pixels, winner as jpg_0', async () => {
    const size = 5;
    const image = (seed: number) => Float32Array.from({ length: 3 * size * size }, (_, i) => ((i * 37 + seed * 11) % 256) / 127.5 - 1);
    const file = encodePairs([{ prompt: 'a red square', winner: image(1), loser: image(2) }], size, size);
    file.pairs[0].preferred = 'b'; // the file may prefer b: the export still writes the preferred image first
    [file.pairs[0].a, file.pairs[0].b] = [file.pairs[0].b, file.pairs[0].a];
    const { rows, width } = rowsFromPairsJson(JSON.stringify(file));
    expect(width).toBe(size);
    const [row] = await readRows((await exportRows(rows)).shards[0]);
    expect([row.label_0, row.label_1]).toEqual([1, 0]);
    for (const [key, chw] of [['jpg_0', image(1)], ['jpg_1', image(2)]] as const) {
      const decoded = await decodeImageNode(row[key] as Uint8Array, key);
      const plane = size * size;
      for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) expect(decoded.data[p * 4 + c]).toBe(Math.round((chw[c * plane + p] + 1) * 127.5));
    }
  });

  it('rejects a broken pairs file with the parser\'s message before any row', () => {
    expect(() => rowsFromPairsJson('{"version": 1, "width": 4, "height": 4, "pairs": [{"prompt": "x"}]}')).toThrow(PairsError);
  });
});

describe('shards and row groups', () => {
  it('starts a new shard every shardRows rows and names them as the Hub does', async () => {
    const { counts } = await exportRows(syntheticRows(5), { shardRows: 2 });
    expect(counts).toEqual([2, 2, 1]);
    expect([0, 1, 2].map((i) => shardPath(i, counts.length))).toEqual([
      'data/train-00000-of-00003.parquet', 'data/train-00001-of-00003.parquet', 'data/train-00002-of-00003.parquet',
    ]);
  });

  it('starts a new shard past shardBytes of images', async () => {
    const { counts } = await exportRows(syntheticRows(6, 1000), { shardBytes: 4500 }); // 2000 image bytes a row
    expect(counts).toEqual([3, 3]);
  });

  it('writes row groups of 100 rows, every row in order', async () => {
    const { counts, shards } = await exportRows(syntheticRows(250));
    expect(counts).toEqual([250]);
    expect(parquetMetadata(shards[0].buffer as ArrayBuffer).row_groups.map((g) => Number(g.num_rows))).toEqual([100, 100, 50]);
    const rows = await readRows(shards[0]);
    expect(rows.map((r) => text(r.caption))).toEqual(Array.from({ length: 250 }, (_, i) => `prompt ${i}`));
    expect(rows.map((r) => r.label_0)).toEqual(Array.from({ length: 250 }, (_, i) => i % 2));
  });

  it('refuses an empty source', async () => {
    await expect(exportRows(syntheticRows(0))).rejects.toThrow('no pairs to export');
  });
});

describe('dataset card and zip', () => {
  const summary: DatasetSummary = { rows: 3, shards: 2, shardRows: [2, 1], reverse: true, tiesDropped: 1, source: '`x.parquet`', images: 'PNG' };

  it("has the configs front matter that maps split train to data/train-*, the features, and the card's facts", () => {
    const card = datasetCard(summary, 'accelerate launch …');
    const front = card.slice(4, card.indexOf('\n---\n', 4));
    expect(front).toContain('configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*');
    expect(front).toContain('  - name: jpg_0\n    dtype: binary');
    expect(front).toContain('  splits:\n  - name: train\n    num_examples: 3');
    expect(card).toContain('| `data/train-00001-of-00002.parquet` | 1 |');
    expect(card).toContain('1 tie (label 0.5) of the source was left out');
    expect(card).toContain('**Reversed for NPO:**');
  });

  it('zips the folder so that our zip reader gets every file back (stored, CRC-checked)', async () => {
    const files = [{ name: 'npo-pairs/README.md', bytes: new TextEncoder().encode('card') }, { name: 'npo-pairs/data/train-00000-of-00001.parquet', bytes: read('pickapic.parquet') }];
    const archive = openZip(writeZip(files), 'npo-pairs.zip');
    expect([...archive.entries.keys()]).toEqual(files.map((f) => f.name));
    for (const f of files) expect(await archive.read(f.name)).toEqual(f.bytes);
  });
});

// Preference pairs out as a dataset that diffusers' examples/research_projects/diffusion_dpo/train_diffusion_dpo.py
// (and _sdxl) reads unchanged through `datasets.load_dataset(<folder>, split="train")`: Pick-a-Pic's layout
// (yuvalkirstain/pickapic_v2) in parquet shards as the Hub lays them out, and a dataset card.
//
//   <out>/README.md                                  card: YAML front matter with `configs` (split train → data/train-*)
//   <out>/data/train-00000-of-00002.parquet          columns caption (string), jpg_0, jpg_1 (binary: PNG/JPEG/WebP
//   <out>/data/train-00001-of-00002.parquet          bytes, what PIL's Image.open reads), label_0, label_1 (double)
//
// Labels: label_0 = 1, label_1 = 0 when jpg_0 is the preferred image (0 and 1 when jpg_1 is). The script's
// preprocess_train swaps the pair when label_0 == 0 and otherwise takes jpg_0 as the winner: a tie (0.5) would
// silently train as "jpg_0 wins", so ties never reach the file (Pick-a-Pic sources drop them, as Diffusion-DPO's own
// training filters them; the card says how many). `reverse` flips the labels, which is the whole of NPO's change to the
// script (G-U-N/Diffusion-NPO's train_sd15.py swaps on label_0 == 1 instead): the unmodified script then trains δ.
//
// Images: a source that holds encoded files (image folder, zip, Pick-a-Pic shard) keeps their bytes as they are; the
// script resizes and crops them itself (--resolution). A pairs.json holds pixels at the training size: they become PNG.
// Shards: rows are written a row group at a time (100 rows, as datasets' own parquet writer uses for image datasets),
// and a new shard starts past `shardRows` rows or `shardBytes` bytes (default 500 MB, datasets' push_to_hub default).
import { ByteWriter, ParquetWriter, type Writer } from 'hyparquet-writer';
import type { SchemaElement } from 'hyparquet';
import { encodePngAsync } from '../share/png-encode.ts';
import type { EncodedPairs } from './pair-sources.ts';
import { PairsError, parsePairsAtOwnSize } from './pairs.ts';
import { writeZip } from './zip-writer.ts';
import { DATASET_SPLIT } from './accelerate-command.ts';

/** One dataset row: the caption, two encoded images, and whether jpg_0 is the preferred one (label_0). */
export interface DatasetRow { caption: string; jpg0: Uint8Array; jpg1: Uint8Array; label0: 0 | 1 }

export const DEFAULT_SHARD_BYTES = 500e6;
export const ROW_GROUP_ROWS = 100;
/** A row group also ends past this many image bytes, so a reader never holds more than about this much of a shard. */
const ROW_GROUP_BYTES = 128 << 20;

/** The Hub's shard names: data/train-00000-of-00003.parquet. */
export function shardPath(index: number, count: number): string {
  const five = (n: number) => String(n).padStart(5, '0');
  return `data/${DATASET_SPLIT}-${five(index)}-of-${five(count)}.parquet`;
}

/** What a written dataset holds, for its card and for messages. */
export interface DatasetSummary {
  rows: number;
  shards: number;
  /** Rows per shard, in order. */
  shardRows: number[];
  reverse: boolean;
  /** Ties the source held and that were left out. */
  tiesDropped: number;
  /** Where the pairs came from and how their images were stored, in words, for the card. */
  source: string;
  images: string;
}

export interface WriteDatasetOptions {
  reverse: boolean;
  /** A new writer for shard `index` (a ByteWriter in the page, a file in Node); finished when the shard is full. */
  openShard: (index: number) => Writer;
  shardRows?: number;
  shardBytes?: number;
  /** Called after each row, for progress. */
  onRow?: (rows: number) => void;
}

const SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: 5 },
  { name: 'caption', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
  { name: 'jpg_0', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
  { name: 'jpg_1', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
  { name: 'label_0', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
  { name: 'label_1', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
];

/** The features `datasets` reads from a parquet file's "huggingface" key (as its own writer stores them). */
export const HF_FEATURES = {
  caption: { dtype: 'string', _type: 'Value' },
  jpg_0: { dtype: 'binary', _type: 'Value' },
  jpg_1: { dtype: 'binary', _type: 'Value' },
  label_0: { dtype: 'float64', _type: 'Value' },
  label_1: { dtype: 'float64', _type: 'Value' },
};

/**
 * Writes rows into parquet shards through `openShard`; returns the rows per shard. The caller names shard i
 * shardPath(i, shardRows.length) once all are written (the count is known only at the end).
 */
export async function writeDatasetShards(rows: AsyncIterable<DatasetRow>, options: WriteDatasetOptions): Promise<number[]> {
  const shardRowLimit = options.shardRows ?? Infinity;
  const shardByteLimit = options.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!(shardRowLimit >= 1) || !(shardByteLimit >= 1)) throw new RangeError('shard limits must be at least 1');
  const shardRows: number[] = [];
  let shard: { writer: ParquetWriter; rows: number; bytes: number } | undefined;
  let group: DatasetRow[] = [];
  let groupBytes = 0;
  let total = 0;
  const flushGroup = async () => {
    if (group.length === 0) return;
    shard ??= { writer: openParquet(options.openShard(shardRows.length)), rows: 0, bytes: 0 };
    await shard.writer.write({ columnData: columnsOf(group, options.reverse), rowGroupSize: group.length });
    shard.rows += group.length;
    shard.bytes += groupBytes;
    group = [];
    groupBytes = 0;
  };
  const closeShard = async () => {
    if (!shard) return;
    await shard.writer.finish();
    shardRows.push(shard.rows);
    shard = undefined;
  };
  for await (const row of rows) {
    group.push(row);
    groupBytes += row.jpg0.length + row.jpg1.length;
    options.onRow?.(++total);
    const shardFull = (shard?.rows ?? 0) + group.length >= shardRowLimit || (shard?.bytes ?? 0) + groupBytes >= shardByteLimit;
    if (group.length >= ROW_GROUP_ROWS || groupBytes >= ROW_GROUP_BYTES || shardFull) await flushGroup();
    if (shardFull) await closeShard();
  }
  await flushGroup();
  await closeShard();
  if (shardRows.length === 0) throw new PairsError('no pairs to export');
  return shardRows;
}

function openParquet(writer: Writer): ParquetWriter {
  return new ParquetWriter({
    writer, schema: SCHEMA, statistics: false, createdBy: 'npo-playground export-pairs',
    kvMetadata: [{ key: 'huggingface', value: JSON.stringify({ info: { features: HF_FEATURES } }) }],
  });
}

function columnsOf(rows: DatasetRow[], reverse: boolean) {
  // reverse flips which image the labels prefer; the images stay where they are
  const label0 = rows.map((r) => (reverse ? 1 - r.label0 : r.label0));
  return [
    { name: 'caption', data: rows.map((r) => r.caption) },
    { name: 'jpg_0', data: rows.map((r) => r.jpg0) },
    { name: 'jpg_1', data: rows.map((r) => r.jpg1) },
    { name: 'label_0', data: Float64Array.from(label0) },
    { name: 'label_1', data: Float64Array.from(label0, (l) => 1 - l) },
  ];
}

/** The magic numbers PIL's Image.open recognises for the formats pair sources hold. */
export function imageFormat(bytes: Uint8Array): 'png' | 'jpeg' | 'webp' | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 8 && bytes[0] === 0x89 && ascii(1, 4) === 'PNG') return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return undefined;
}

/** Rows of a folder, zip or Pick-a-Pic source, images as the source stores them (checked to be PNG, JPEG or WebP). */
export async function* rowsFromEncodedPairs(source: EncodedPairs): AsyncGenerator<DatasetRow> {
  for await (const pair of source.pairs) {
    for (const image of pair.images) {
      if (!imageFormat(image.bytes)) throw new PairsError(`${image.where}: not a PNG, JPEG or WebP file (the training script's PIL could not open it)`);
    }
    yield { caption: pair.prompt, jpg0: pair.images[0].bytes, jpg1: pair.images[1].bytes, label0: pair.preferred === 0 ? 1 : 0 };
  }
}

/**
 * Rows of a pairs.json's text (docs/pairs-format.md): every pair decoded and checked first by the project's parser (a
 * broken file fails before anything is written), the preferred image as jpg_0, PNG at the file's own size
 * (float32-chw images round to 8 bits). Returns the size too, for the card.
 */
export function rowsFromPairsJson(text: string): { rows: AsyncGenerator<DatasetRow>; width: number; height: number } {
  let size = { width: 0, height: 0 };
  const pairs = parsePairsAtOwnSize(text, (width, height) => (size = { width, height }));
  const { width, height } = size;
  async function* rows(): AsyncGenerator<DatasetRow> {
    for (const pair of pairs) {
      yield { caption: pair.prompt, jpg0: await encodePngAsync(pair.winner, width, height), jpg1: await encodePngAsync(pair.loser, width, height), label0: 1 };
    }
  }
  return { rows: rows(), width, height };
}

/** The dataset card: YAML front matter the Hub and datasets.load_dataset read, then what the set is and how to train. */
export function datasetCard(summary: DatasetSummary, trainCommand: string): string {
  const { rows, shards, reverse } = summary;
  const shardList = summary.shardRows.map((n, i) => `| \`${shardPath(i, shards)}\` | ${n} |`).join('\n');
  return `---
configs:
- config_name: default
  data_files:
  - split: ${DATASET_SPLIT}
    path: data/${DATASET_SPLIT}-*
dataset_info:
  features:
${Object.entries(HF_FEATURES).map(([name, f]) => `  - name: ${name}\n    dtype: ${f.dtype}`).join('\n')}
  splits:
  - name: ${DATASET_SPLIT}
    num_examples: ${rows}
task_categories:
- text-to-image
tags:
- preference
- dpo
${reverse ? '- npo\n' : ''}---

# Preference pairs for ${reverse ? 'NPO (labels reversed)' : 'Diffusion-DPO'}

${rows} pair${rows === 1 ? '' : 's'} in Pick-a-Pic's layout (\`caption\`, \`jpg_0\`, \`jpg_1\`, \`label_0\`, \`label_1\`), exported by
npo-playground from ${summary.source}. Images: ${summary.images}.

- **Labels.** \`label_0 = 1, label_1 = 0\`: jpg_0 is the preferred image; \`0, 1\`: jpg_1 is.${reverse
    ? ' **Reversed for NPO:** these labels mark the image people did *not* prefer as the winner, so diffusers\'\n  unmodified `train_diffusion_dpo.py` trains the negative-preference offset δ of Diffusion-NPO on them.'
    : ' Export with `--reverse` (or tick NPO in the page) to train δ for Diffusion-NPO.'}
- **No ties.** ${summary.tiesDropped ? `${summary.tiesDropped} tie${summary.tiesDropped === 1 ? '' : 's'} (label 0.5) of the source ${summary.tiesDropped === 1 ? 'was' : 'were'} left out` : 'The source had none'}: the script would train a tie as "jpg_0 wins".
- **Split.** One split, \`${DATASET_SPLIT}\`. The script's \`--dataset_split_name\` defaults to \`validation\`: pass \`--dataset_split_name ${DATASET_SPLIT}\`.

| shard | rows |
| --- | --- |
${shardList}

## Train

\`\`\`sh
${trainCommand}
\`\`\`
`;
}

/**
 * The page's "Download as dataset": a pairs.json's pairs as the dataset folder `<name>/` (card + shards) in one .zip,
 * so that after unzipping `--dataset_name <name>` is the folder. `trainCommand(dir)` gives the card's command.
 */
export async function datasetZipFromPairsJson(pairsJson: string, options: { name: string; reverse: boolean; source: string; trainCommand: (datasetDir: string) => string }): Promise<{ zip: Uint8Array; summary: DatasetSummary }> {
  const { rows, width, height } = rowsFromPairsJson(pairsJson);
  const writers: ByteWriter[] = [];
  const shardRows = await writeDatasetShards(rows, { reverse: options.reverse, openShard: () => { writers.push(new ByteWriter()); return writers.at(-1)!; } });
  const summary: DatasetSummary = {
    rows: shardRows.reduce((a, b) => a + b, 0), shards: shardRows.length, shardRows, reverse: options.reverse, tiesDropped: 0,
    source: options.source, images: `PNG at the pairs' ${width}×${height} (the training size in the page; \`npm run export-pairs\` on the original folder, zip or shard keeps full-size files)`,
  };
  const card = datasetCard(summary, options.trainCommand(`./${options.name}`));
  const zip = writeZip([
    { name: `${options.name}/README.md`, bytes: new TextEncoder().encode(card) },
    ...writers.map((w, i) => ({ name: `${options.name}/${shardPath(i, writers.length)}`, bytes: new Uint8Array(w.getBuffer()) })),
  ]);
  return { zip, summary };
}

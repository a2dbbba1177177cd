// Pair sources besides pairs.json, all turned into one pairs.json (rgb8 at the training size, src/train/pairs.ts), the
// one set training reads in the page and in Node:
//   • an image folder or a .zip of one, Hugging Face imagefolder style: a metadata.jsonl (or metadata.csv) whose rows
//     name a prompt and two image files, {"prompt": …, "chosen": "good/1.png", "rejected": "bad/1.jpg"}, paths
//     relative to the metadata file's folder; PNG, JPEG or WebP of any size;
//   • Pick-a-Pic parquet shards (yuvalkirstain/pickapic_v2 columns caption, jpg_0, jpg_1, label_0, label_1):
//     label_0 = 1 means jpg_0 was preferred, 0 means jpg_1; ties (0.5) are dropped, as the Diffusion-DPO training
//     filters them. Read with hyparquet one row group at a time, so a shard is never held whole in memory.
// Images are resized and centre-cropped as diffusers' train_diffusion_dpo.py (src/train/image-prep.ts); each pair keeps
// one image's original size and crop offsets as its "source" (SDXL's time_ids): the chosen image of a folder row, a
// shard row's jpg_0 (as train_diffusion_dpo_sdxl.py, which also resizes jpg_1 to jpg_0's size first; here each image
// is resized and cropped on its own, the same when both have one size, as Pick-a-Pic's pairs do). Decoding is
// the platform's (createImageBitmap in the page, sharp in Node), passed in as `decode`.
// Every error names the source and the broken file or metadata line.
// The readers first yield each pair's images as the source stores them (encodedPairsFromFolder, encodedPairsFromParquet);
// the pairs.json builders below decode those, and the dataset export (dataset-export.ts) keeps the bytes as they are.
import { parquetMetadataAsync, parquetRead, type AsyncBuffer, type FileMetaData } from 'hyparquet';
import { jsonLimitProblem } from '../util/json-limits.ts';
import { prepareTrainingImage, trainingCrop, type RgbaImage } from './image-prep.ts';
import { bytesToBase64, MAX_PAIRS, MAX_PAIRS_CHARS, PairsError, type ImageSource, type PairsFile } from './pairs.ts';
import { snappyDecode } from './snappy.ts';
import { openZip } from './zip.ts';

/** Decodes PNG/JPEG/WebP bytes to RGBA; throws on anything else. */
export type ImageDecoder = (bytes: Uint8Array, name: string) => Promise<RgbaImage>;

export interface PairSourceOptions {
  /** Training resolution: images become size × size. */
  size: number;
  decode: ImageDecoder;
  /** Stop after this many pairs (default: as many as fit a pairs.json, MAX_PAIRS_CHARS). */
  maxPairs?: number;
  /** Called after each pair, for progress. */
  onPair?: (count: number) => void;
}

/** A pairs.json built from a source, and what was left out (ties, pairs past the limit). */
export interface PairSet {
  file: PairsFile;
  notes: string[];
}

/** Largest image accepted, in pixels (Pillow refuses at twice its 89 M-pixel warning; we stop lower, at 64 M). */
export const MAX_IMAGE_PIXELS = 64 << 20;
/** Largest .zip read whole into memory (2 GiB; a parquet shard is read in slices, never whole). */
export const MAX_ZIP_BYTES = 2 ** 31 - 1;
export const METADATA_NAMES = ['metadata.jsonl', 'metadata.csv'];
const MAX_METADATA_CHARS = 64 << 20;

/** A folder's files by path relative to the folder ('/'-separated), read on demand. */
export type FolderFiles = ReadonlyMap<string, () => Promise<Uint8Array>>;

interface MetadataRow {
  prompt: string;
  chosen: string;
  rejected: string;
  where: string;
}

/** An image file of a pair, as the source stores it (PNG, JPEG or WebP bytes), and where it came from, for messages. */
export interface EncodedImageFile { bytes: Uint8Array; where: string }

/**
 * A pair as its source holds it: two encoded images in the source's order (a folder row's chosen then rejected; a
 * shard row's jpg_0 then jpg_1) and which of them was preferred (Pick-a-Pic's label_0 = 1 is 0 here).
 */
export interface EncodedPair { prompt: string; images: [EncodedImageFile, EncodedImageFile]; preferred: 0 | 1; where: string }

/** A source's pairs, read on demand, with how many the source declares and how many ties were dropped so far. */
export interface EncodedPairs {
  pairs: AsyncGenerator<EncodedPair>;
  /** Rows the source declares (metadata lines, shard rows), ties included, and the same in words for messages. */
  rows: number;
  rowsInWords: string;
  /** Ties (Pick-a-Pic label_0 = 0.5) skipped so far: final once `pairs` is done. */
  ties: () => number;
}

/** The pairs of an image folder (a directory chosen or dropped in the page, or a path in Node), images undecoded. */
export async function encodedPairsFromFolder(files: FolderFiles, sourceName: string): Promise<EncodedPairs> {
  const metadataPath = findMetadata([...files.keys()], sourceName);
  const base = metadataPath.includes('/') ? metadataPath.slice(0, metadataPath.lastIndexOf('/') + 1) : '';
  const text = new TextDecoder().decode(await files.get(metadataPath)!());
  if (text.length > MAX_METADATA_CHARS) throw new PairsError(`${sourceName}: ${metadataPath} is ${text.length} characters long; the limit is ${MAX_METADATA_CHARS}`);
  const rows = metadataPath.endsWith('.csv') ? parseMetadataCsv(text, `${sourceName}: ${metadataPath}`) : parseMetadataJsonl(text, `${sourceName}: ${metadataPath}`);
  async function* pairs(): AsyncGenerator<EncodedPair> {
    for (const row of rows) {
      const load = async (name: string): Promise<EncodedImageFile> => {
        const path = resolvePath(base, name, row.where);
        const read = files.get(path);
        if (!read) throw new PairsError(`${row.where}: the file ${JSON.stringify(name)} is not in ${sourceName}`);
        return { bytes: await read(), where: `${sourceName}: ${path}` };
      };
      yield { prompt: row.prompt, images: [await load(row.chosen), await load(row.rejected)], preferred: 0, where: row.where };
    }
  }
  return { pairs: pairs(), rows: rows.length, rowsInWords: `${rows.length} pairs`, ties: () => 0 };
}

/** Pairs from an image folder (a directory chosen or dropped in the page, or a path in Node). */
export async function pairsFromFolder(files: FolderFiles, sourceName: string, options: PairSourceOptions): Promise<PairSet> {
  return pairSetFrom(await encodedPairsFromFolder(files, sourceName), sourceName, options);
}

/**
 * A source's pairs decoded and prepared at the training size, as many as fit (ties dropped, with a note). SDXL's
 * micro-conditioning comes from the pair's first image (a folder row's chosen one; a shard row's jpg_0, whichever
 * won, as train_diffusion_dpo_sdxl.py).
 */
export async function pairSetFrom(source: EncodedPairs, sourceName: string, options: PairSourceOptions): Promise<PairSet> {
  const builder = new PairSetBuilder(options);
  for await (const pair of source.pairs) {
    const [first, second] = [await decodeAndPrepare(pair.images[0], options), await decodeAndPrepare(pair.images[1], options)];
    const [winner, loser] = pair.preferred === 0 ? [first, second] : [second, first];
    builder.add(pair.prompt, winner.pixels, loser.pixels, first.source);
    if (builder.full) break; // before the next pair is read (the next row group of a shard is not fetched)
  }
  const ties = source.ties();
  const set = builder.finish(source.rows - ties, source.rowsInWords, sourceName);
  if (ties) set.notes.unshift(`${ties} tie${ties > 1 ? 's' : ''} dropped`);
  return set;
}

/** Pairs from a .zip holding an image folder. */
export async function pairsFromZip(bytes: Uint8Array, sourceName: string, options: PairSourceOptions): Promise<PairSet> {
  return pairsFromFolder(zipFolderFiles(bytes, sourceName), sourceName, options);
}

/** A .zip's files as a folder (macOS's __MACOSX/ resource forks left out); zip errors become PairsErrors. */
export function zipFolderFiles(bytes: Uint8Array, sourceName: string): FolderFiles {
  let archive;
  try {
    archive = openZip(bytes, sourceName);
  } catch (error) {
    throw new PairsError((error as Error).message);
  }
  return new Map([...archive.entries.keys()].filter((name) => !name.startsWith('__MACOSX/')).map((name) => [name, async () => {
    try {
      return await archive.read(name);
    } catch (error) {
      throw new PairsError((error as Error).message);
    }
  }] as const));
}

/** The shallowest metadata.jsonl / metadata.csv; two at that depth are ambiguous. */
function findMetadata(paths: string[], sourceName: string): string {
  const found = paths.filter((p) => METADATA_NAMES.includes(p.slice(p.lastIndexOf('/') + 1)));
  if (found.length === 0) throw new PairsError(`${sourceName}: no metadata.jsonl or metadata.csv (rows of {"prompt", "chosen", "rejected"} naming the images)`);
  const depth = (p: string) => p.split('/').length;
  const top = Math.min(...found.map(depth));
  const shallowest = found.filter((p) => depth(p) === top);
  if (shallowest.length > 1) throw new PairsError(`${sourceName}: more than one metadata file (${shallowest.join(', ')}); keep one`);
  return shallowest[0];
}

/** A metadata row's file name, relative to the metadata's folder; never above it. */
function resolvePath(base: string, name: string, where: string): string {
  const parts: string[] = [];
  for (const part of (base + name.replace(/\\/g, '/')).split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new PairsError(`${where}: the file name ${JSON.stringify(name)} points outside the pair set`);
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
}

function checkRow(value: unknown, where: string): MetadataRow {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PairsError(`${where}: must be an object with "prompt", "chosen" and "rejected"`);
  const row = value as Record<string, unknown>;
  for (const key of ['prompt', 'chosen', 'rejected']) {
    if (typeof row[key] !== 'string') throw new PairsError(`${where}: "${key}" must be a string${key in row ? '' : ' (missing)'}`);
  }
  if ((row.chosen as string).length === 0 || (row.rejected as string).length === 0) throw new PairsError(`${where}: "chosen" and "rejected" must name image files`);
  return { prompt: row.prompt as string, chosen: row.chosen as string, rejected: row.rejected as string, where };
}

export function parseMetadataJsonl(text: string, name: string): MetadataRow[] {
  const rows: MetadataRow[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${name} line ${i + 1}`;
    const problem = jsonLimitProblem(line, { maxChars: 1 << 20 });
    if (problem) throw new PairsError(`${where} is refused: ${problem}`);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new PairsError(`${where} is not JSON: ${(error as Error).message}`);
    }
    rows.push(checkRow(value, where));
  });
  if (rows.length === 0) throw new PairsError(`${name} has no rows`);
  return rows;
}

/** RFC 4180 CSV with a header row naming (at least) prompt, chosen and rejected. */
export function parseMetadataCsv(text: string, name: string): MetadataRow[] {
  const records = parseCsv(text, name);
  if (records.length < 2) throw new PairsError(`${name} has no rows under its header`);
  const header = records[0].map((h) => h.trim());
  const column = (key: string) => {
    const index = header.indexOf(key);
    if (index < 0) throw new PairsError(`${name}: the header has no "${key}" column (it has ${header.map((h) => JSON.stringify(h)).join(', ')})`);
    return index;
  };
  const [p, c, r] = [column('prompt'), column('chosen'), column('rejected')];
  return records.slice(1).filter((rec) => rec.length > 1 || rec[0] !== '').map((rec) => {
    const where = `${name} record ${rec.line}`;
    if (rec.length !== header.length) throw new PairsError(`${where}: ${rec.length} fields; the header has ${header.length}`);
    return checkRow({ prompt: rec[p], chosen: rec[c], rejected: rec[r] }, where);
  });
}

function parseCsv(text: string, name: string): (string[] & { line: number })[] {
  const records: (string[] & { line: number })[] = [];
  let field = '';
  let record = Object.assign([] as string[], { line: 1 });
  let line = 1;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else { if (ch === '\n') line++; field += ch; }
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') { record.push(field); field = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      record.push(field); field = '';
      records.push(record);
      record = Object.assign([] as string[], { line: ++line });
    } else field += ch;
  }
  if (quoted) throw new PairsError(`${name}: a quoted field opened on or before line ${line} is never closed`);
  if (field !== '' || record.length > 0) { record.push(field); records.push(record); }
  return records;
}

/** An image at the training size (rgb8) and what it was cut from. */
interface PreparedImage { pixels: Uint8Array; source: ImageSource }

async function decodeAndPrepare({ bytes, where }: EncodedImageFile, options: PairSourceOptions): Promise<PreparedImage> {
  let image: RgbaImage;
  try {
    image = await options.decode(bytes, where);
  } catch (error) {
    throw new PairsError(`${where}: cannot be decoded as a PNG, JPEG or WebP image (${(error as Error).message})`);
  }
  if (image.width * image.height > MAX_IMAGE_PIXELS) throw new PairsError(`${where}: ${image.width}×${image.height} pixels; the limit is ${MAX_IMAGE_PIXELS}`);
  return { pixels: prepareTrainingImage(image, options.size), source: trainingCrop(image.width, image.height, options.size) };
}

/** Pick-a-Pic columns read from a shard. */
const PICKAPIC_COLUMNS = ['caption', 'jpg_0', 'jpg_1', 'label_0', 'label_1'];

/** A parquet page's uncompressed size is checked against this before anything is allocated. */
const MAX_PARQUET_PAGE_BYTES = 256 << 20;
/** Our strict Snappy decoder instead of hyparquet's, which loops for seconds on some hostile pages (snappy.ts). */
export const PARQUET_DECOMPRESSORS = { SNAPPY: (input: Uint8Array, length: number) => snappyDecode(input, length, MAX_PARQUET_PAGE_BYTES) };

/** The pairs of a Pick-a-Pic parquet shard, images undecoded, ties skipped and counted; read a row group at a time. */
export async function encodedPairsFromParquet(file: AsyncBuffer, sourceName: string): Promise<EncodedPairs> {
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new PairsError(`${sourceName}: not a readable parquet file (${(error as Error).message})`);
  }
  const names = new Set(metadata.schema.map((s) => s.name));
  const missing = PICKAPIC_COLUMNS.filter((c) => !names.has(c));
  if (missing.length) throw new PairsError(`${sourceName}: not a Pick-a-Pic shard, it has no column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  let ties = 0;
  async function* pairs(): AsyncGenerator<EncodedPair> {
    let rowStart = 0;
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows);
      let rows: Record<string, unknown>[] = [];
      try {
        await parquetRead({ file, metadata, columns: PICKAPIC_COLUMNS, rowStart, rowEnd, utf8: false, rowFormat: 'object', compressors: PARQUET_DECOMPRESSORS, onComplete: (r) => { rows = r; } });
      } catch (error) {
        throw new PairsError(`${sourceName}: rows ${rowStart}–${rowEnd - 1} cannot be read (${(error as Error).message})`);
      }
      for (const [i, row] of rows.entries()) {
        const where = `${sourceName} row ${rowStart + i}`;
        const label = Number(row.label_0);
        if (label === 0.5) { ties++; continue; }
        if (label !== 0 && label !== 1) throw new PairsError(`${where}: label_0 is ${String(row.label_0)}; expected 0, 0.5 or 1`);
        const caption = typeof row.caption === 'string' ? row.caption : row.caption instanceof Uint8Array ? new TextDecoder().decode(row.caption) : undefined;
        if (caption === undefined) throw new PairsError(`${where}: caption is not text`);
        const image = (key: 'jpg_0' | 'jpg_1'): EncodedImageFile => {
          const bytes = row[key];
          if (!(bytes instanceof Uint8Array)) throw new PairsError(`${where}: ${key} is not binary image data`);
          return { bytes, where: `${where}, ${key}` };
        };
        yield { prompt: caption, images: [image('jpg_0'), image('jpg_1')], preferred: label === 1 ? 0 : 1, where };
      }
      rowStart = rowEnd;
    }
  }
  const rowCount = Number(metadata.num_rows);
  return { pairs: pairs(), rows: rowCount, rowsInWords: `the shard's ${rowCount} rows`, ties: () => ties };
}

/** Pairs from a Pick-a-Pic parquet shard (ties dropped), read a row group at a time. */
export async function pairsFromParquet(file: AsyncBuffer, sourceName: string, options: PairSourceOptions): Promise<PairSet> {
  return pairSetFrom(await encodedPairsFromParquet(file, sourceName), sourceName, options);
}

/** Collects rgb8 pairs while they fit a pairs.json (MAX_PAIRS_CHARS, MAX_PAIRS, the caller's maxPairs). */
class PairSetBuilder {
  private pairs: PairsFile['pairs'] = [];
  private chars = 0;
  full = false;
  constructor(private options: PairSourceOptions) {}

  add(prompt: string, winner: Uint8Array, loser: Uint8Array, source: ImageSource) {
    const a = { encoding: 'rgb8' as const, data: bytesToBase64(winner) };
    const b = { encoding: 'rgb8' as const, data: bytesToBase64(loser) };
    const chars = a.data.length + b.data.length + prompt.length * 6 + 100;
    if (this.chars + chars > MAX_PAIRS_CHARS) { this.full = true; return; }
    this.chars += chars;
    this.pairs.push({ prompt, preferred: 'a', a, b, source });
    this.options.onPair?.(this.pairs.length);
    if (this.pairs.length >= Math.min(MAX_PAIRS, this.options.maxPairs ?? Infinity)) this.full = true;
  }

  /** `available`: pairs the source has (Infinity when not known), `total` says it in words. */
  finish(available: number, total: string, sourceName: string): PairSet {
    const { size } = this.options;
    if (this.pairs.length === 0) throw new PairsError(`${sourceName}: no pairs to train on`);
    const limit = this.options.maxPairs !== undefined && this.pairs.length >= this.options.maxPairs ? 'the limit asked for' : `the most a pairs set at ${size}×${size} holds`;
    const notes = this.pairs.length < available ? [`the first ${this.pairs.length} pairs of ${total} (${limit})`] : [];
    return { file: { version: 1, width: size, height: size, pairs: this.pairs }, notes };
  }
}

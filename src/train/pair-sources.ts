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
import { parquetMetadataAsync, parquetRead, type AsyncBuffer } from 'hyparquet';
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

/** Pairs from an image folder (a directory chosen or dropped in the page, or a path in Node). */
export async function pairsFromFolder(files: FolderFiles, sourceName: string, options: PairSourceOptions): Promise<PairSet> {
  const metadataPath = findMetadata([...files.keys()], sourceName);
  const base = metadataPath.includes('/') ? metadataPath.slice(0, metadataPath.lastIndexOf('/') + 1) : '';
  const text = new TextDecoder().decode(await files.get(metadataPath)!());
  if (text.length > MAX_METADATA_CHARS) throw new PairsError(`${sourceName}: ${metadataPath} is ${text.length} characters long; the limit is ${MAX_METADATA_CHARS}`);
  const rows = metadataPath.endsWith('.csv') ? parseMetadataCsv(text, `${sourceName}: ${metadataPath}`) : parseMetadataJsonl(text, `${sourceName}: ${metadataPath}`);
  const builder = new PairSetBuilder(options);
  for (const row of rows) {
    if (builder.full) break;
    const load = async (name: string) => {
      const path = resolvePath(base, name, row.where);
      const read = files.get(path);
      if (!read) throw new PairsError(`${row.where}: the file ${JSON.stringify(name)} is not in ${sourceName}`);
      return decodeAndPrepare(await read(), `${sourceName}: ${path}`, options);
    };
    // SDXL's micro-conditioning comes from one image of the pair (the script's jpg_0): here the chosen one.
    const [chosen, rejected] = [await load(row.chosen), await load(row.rejected)];
    builder.add(row.prompt, chosen.pixels, rejected.pixels, chosen.source);
  }
  return builder.finish(rows.length, `${rows.length} pairs`, sourceName);
}

/** Pairs from a .zip holding an image folder. */
export async function pairsFromZip(bytes: Uint8Array, sourceName: string, options: PairSourceOptions): Promise<PairSet> {
  let archive;
  try {
    archive = openZip(bytes, sourceName);
  } catch (error) {
    throw new PairsError((error as Error).message);
  }
  const files = new Map([...archive.entries.keys()].filter((name) => !name.startsWith('__MACOSX/')).map((name) => [name, async () => {
    try {
      return await archive.read(name);
    } catch (error) {
      throw new PairsError((error as Error).message);
    }
  }] as const));
  return pairsFromFolder(files, sourceName, options);
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

async function decodeAndPrepare(bytes: Uint8Array, where: string, options: PairSourceOptions): Promise<PreparedImage> {
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

/** Pairs from a Pick-a-Pic parquet shard (ties dropped), read a row group at a time. */
/** A parquet page's uncompressed size is checked against this before anything is allocated. */
const MAX_PARQUET_PAGE_BYTES = 256 << 20;
/** Our strict Snappy decoder instead of hyparquet's, which loops for seconds on some hostile pages (snappy.ts). */
const PARQUET_DECOMPRESSORS = { SNAPPY: (input: Uint8Array, length: number) => snappyDecode(input, length, MAX_PARQUET_PAGE_BYTES) };

export async function pairsFromParquet(file: AsyncBuffer, sourceName: string, options: PairSourceOptions): Promise<PairSet> {
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new PairsError(`${sourceName}: not a readable parquet file (${(error as Error).message})`);
  }
  const names = new Set(metadata.schema.map((s) => s.name));
  const missing = PICKAPIC_COLUMNS.filter((c) => !names.has(c));
  if (missing.length) throw new PairsError(`${sourceName}: not a Pick-a-Pic shard, it has no column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  const builder = new PairSetBuilder(options);
  let ties = 0;
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    if (builder.full) break;
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[] = [];
    try {
      await parquetRead({ file, metadata, columns: PICKAPIC_COLUMNS, rowStart, rowEnd, utf8: false, rowFormat: 'object', compressors: PARQUET_DECOMPRESSORS, onComplete: (r) => { rows = r; } });
    } catch (error) {
      throw new PairsError(`${sourceName}: rows ${rowStart}–${rowEnd - 1} cannot be read (${(error as Error).message})`);
    }
    for (const [i, row] of rows.entries()) {
      if (builder.full) break;
      const where = `${sourceName} row ${rowStart + i}`;
      const label = Number(row.label_0);
      if (label === 0.5) { ties++; continue; }
      if (label !== 0 && label !== 1) throw new PairsError(`${where}: label_0 is ${String(row.label_0)}; expected 0, 0.5 or 1`);
      const caption = typeof row.caption === 'string' ? row.caption : row.caption instanceof Uint8Array ? new TextDecoder().decode(row.caption) : undefined;
      if (caption === undefined) throw new PairsError(`${where}: caption is not text`);
      const image = async (key: 'jpg_0' | 'jpg_1') => {
        const bytes = row[key];
        if (!(bytes instanceof Uint8Array)) throw new PairsError(`${where}: ${key} is not binary image data`);
        return decodeAndPrepare(bytes, `${where}, ${key}`, options);
      };
      const [a, b] = [await image('jpg_0'), await image('jpg_1')];
      // time_ids from jpg_0 whichever image won, as train_diffusion_dpo_sdxl.py's preprocess_train
      builder.add(caption, (label === 1 ? a : b).pixels, (label === 1 ? b : a).pixels, a.source);
    }
    rowStart = rowEnd;
  }
  const rowCount = Number(metadata.num_rows);
  const set = builder.finish(builder.full ? Infinity : rowCount - ties, `the shard's ${rowCount} rows`, sourceName);
  if (ties) set.notes.unshift(`${ties} tie${ties > 1 ? 's' : ''} dropped`);
  return set;
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

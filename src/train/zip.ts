// A bounds-checked reader for .zip pair sets (PKWARE APPNOTE 6.3: end of central directory → central directory →
// local headers). Every offset and length is checked against the file before it is used; entries are inflated one at a
// time, on demand, with the platform's DecompressionStream('deflate-raw') (browsers and Node ≥ 20), and the output is
// held to the size the directory declares and checked against its CRC-32, so a zip bomb or a corrupt entry fails
// with the entry's name instead of exhausting memory or feeding garbage to the image decoder.
// Not supported, with a message: zip64, encryption, compression methods other than stored (0) and deflate (8).
import { crc32 } from '../share/crc32.ts';

export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZipError';
  }
}

export interface ZipLimits {
  /** Most entries in the directory. */
  maxEntries: number;
  /** Largest uncompressed entry, in bytes. */
  maxEntryBytes: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxEntries: 200_000, maxEntryBytes: 64 << 20 };

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export interface ZipArchive {
  entries: ReadonlyMap<string, ZipEntry>;
  read(name: string): Promise<Uint8Array>;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

export function openZip(bytes: Uint8Array, zipName: string, limits: ZipLimits = DEFAULT_ZIP_LIMITS): ZipArchive {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (what: string) => new ZipError(`${zipName}: ${what}`);
  const eocd = findEndOfCentralDirectory(view);
  if (eocd < 0) throw fail('not a zip file (no end-of-central-directory record)');
  const count = view.getUint16(eocd + 10, true);
  const dirSize = view.getUint32(eocd + 12, true);
  const dirOffset = view.getUint32(eocd + 16, true);
  if (count === 0xffff || dirOffset === 0xffffffff) throw fail('zip64 archives are not supported');
  if (count > limits.maxEntries) throw fail(`${count} entries; the limit is ${limits.maxEntries}`);
  if (dirOffset + dirSize > eocd) throw fail(`the central directory (${dirSize} bytes at ${dirOffset}) runs past the end of the file`);
  const entries = new Map<string, ZipEntry>();
  let p = dirOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > dirOffset + dirSize || view.getUint32(p, true) !== CENTRAL) throw fail(`directory entry ${i} is damaged (at byte ${p})`);
    const flags = view.getUint16(p + 8, true);
    const nameLength = view.getUint16(p + 28, true);
    const next = p + 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
    if (next > dirOffset + dirSize) throw fail(`directory entry ${i} runs past the central directory`);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    const entry: ZipEntry = {
      name, method: view.getUint16(p + 10, true), crc32: view.getUint32(p + 16, true),
      compressedSize: view.getUint32(p + 20, true), size: view.getUint32(p + 24, true), localHeaderOffset: view.getUint32(p + 42, true),
    };
    p = next;
    if (name.endsWith('/')) continue; // a folder
    if (flags & 1) throw fail(`${name} is encrypted`);
    if (entry.size === 0xffffffff || entry.compressedSize === 0xffffffff || entry.localHeaderOffset === 0xffffffff) throw fail(`${name}: zip64 entries are not supported`);
    if (entries.has(name)) throw fail(`${name} appears twice`);
    entries.set(name, entry);
  }
  return { entries, read: (name) => readEntry(bytes, view, entries.get(name), name, zipName, limits) };
}

/** The EOCD record is at the end, followed by a comment of up to 65535 bytes: search backwards. */
function findEndOfCentralDirectory(view: DataView): number {
  for (let p = view.byteLength - 22; p >= Math.max(0, view.byteLength - 22 - 0xffff); p--) {
    if (view.getUint32(p, true) === EOCD && p + 22 + view.getUint16(p + 20, true) === view.byteLength) return p;
  }
  return -1;
}

async function readEntry(bytes: Uint8Array, view: DataView, entry: ZipEntry | undefined, name: string, zipName: string, limits: ZipLimits): Promise<Uint8Array> {
  const fail = (what: string) => new ZipError(`${zipName}: ${name}: ${what}`);
  if (!entry) throw new ZipError(`${zipName}: has no file ${name}`);
  if (entry.size > limits.maxEntryBytes) throw fail(`${entry.size} bytes uncompressed; the limit is ${limits.maxEntryBytes}`);
  const at = entry.localHeaderOffset;
  if (at + 30 > bytes.byteLength || view.getUint32(at, true) !== LOCAL) throw fail(`the local header (at byte ${at}) is damaged`);
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  if (start + entry.compressedSize > bytes.byteLength) throw fail(`its data (${entry.compressedSize} bytes at ${start}) runs past the end of the file`);
  const raw = bytes.subarray(start, start + entry.compressedSize);
  let data: Uint8Array;
  if (entry.method === 0) data = raw;
  else if (entry.method === 8) data = await inflateRaw(raw, entry.size, fail);
  else throw fail(`compression method ${entry.method} is not supported (only stored and deflate)`);
  if (data.byteLength !== entry.size) throw fail(`${data.byteLength} bytes after decompression; the directory says ${entry.size}`);
  if (crc32(data) !== entry.crc32) throw fail('CRC-32 mismatch: the entry is corrupt');
  return data;
}

/** Inflates, stopping as soon as the output passes `expected` bytes (a lying size is an error, not a bomb). */
async function inflateRaw(raw: Uint8Array, expected: number, fail: (what: string) => ZipError): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  let length = 0;
  const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (length + value.byteLength > expected) {
        await reader.cancel();
        throw fail(`inflates to more than the ${expected} bytes the directory declares`);
      }
      out.set(value, length);
      length += value.byteLength;
    }
  } catch (error) {
    if (error instanceof ZipError) throw error;
    throw fail(`cannot be decompressed (${(error as Error).message})`);
  }
  return out.subarray(0, length);
}

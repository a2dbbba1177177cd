// A small .zip writer (PKWARE APPNOTE 6.3, the layout src/train/zip.ts reads): entries stored uncompressed (method 0)
// with their CRC-32, UTF-8 names (flag bit 11), a fixed timestamp, then the central directory and its end record.
// Used for the page's dataset download, whose entries (parquet shards of PNG/JPEG bytes, a README) are compressed
// already or tiny. No zip64: the whole archive stays under 4 GiB, checked.
import { crc32 } from '../share/crc32.ts';

export interface ZipInput { name: string; bytes: Uint8Array }

const MAX_ZIP32_BYTES = 0xffffffff;
/** 1980-01-01 00:00 in MS-DOS date/time, the earliest a zip can say: archives are byte-identical for equal files. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const UTF8_NAMES = 1 << 11;

export function writeZip(files: readonly ZipInput[]): Uint8Array {
  const names = files.map((f) => new TextEncoder().encode(f.name));
  const localBytes = files.reduce((n, f, i) => n + 30 + names[i].length + f.bytes.length, 0);
  const centralBytes = names.reduce((n, name) => n + 46 + name.length, 0);
  const total = localBytes + centralBytes + 22;
  if (total > MAX_ZIP32_BYTES || files.length > 0xffff) throw new RangeError(`writeZip: ${files.length} files, ${total} bytes: over the zip32 limits (65535 entries, 4 GiB)`);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const offsets: number[] = [];
  const crcs = files.map((f) => crc32(f.bytes));
  let p = 0;
  files.forEach((file, i) => {
    offsets.push(p);
    view.setUint32(p, 0x04034b50, true);
    writeCommonHeader(view, p + 4, names[i].length, crcs[i], file.bytes.length);
    out.set(names[i], p + 30);
    out.set(file.bytes, p + 30 + names[i].length);
    p += 30 + names[i].length + file.bytes.length;
  });
  const centralStart = p;
  files.forEach((file, i) => {
    view.setUint32(p, 0x02014b50, true);
    view.setUint16(p + 4, 20, true); // made by: version 2.0
    writeCommonHeader(view, p + 6, names[i].length, crcs[i], file.bytes.length);
    // extra, comment lengths, disk number, internal and external attributes: 0
    view.setUint32(p + 42, offsets[i], true);
    out.set(names[i], p + 46);
    p += 46 + names[i].length;
  });
  view.setUint32(p, 0x06054b50, true);
  view.setUint16(p + 8, files.length, true);
  view.setUint16(p + 10, files.length, true);
  view.setUint32(p + 12, p - centralStart, true);
  view.setUint32(p + 16, centralStart, true);
  return out;
}

/** The fields local and central headers share, from "version needed" to the extra field's length (26 bytes). */
function writeCommonHeader(view: DataView, at: number, nameLength: number, crc: number, size: number) {
  view.setUint16(at, 20, true); // version needed: 2.0
  view.setUint16(at + 2, UTF8_NAMES, true);
  view.setUint16(at + 4, 0, true); // stored
  view.setUint16(at + 6, DOS_TIME, true);
  view.setUint16(at + 8, DOS_DATE, true);
  view.setUint32(at + 10, crc, true);
  view.setUint32(at + 14, size, true); // compressed size = size
  view.setUint32(at + 18, size, true);
  view.setUint16(at + 22, nameLength, true);
  view.setUint16(at + 24, 0, true); // extra field length
}

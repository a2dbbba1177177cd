// PNG text chunks: read the tEXt / zTXt / iTXt chunks of a PNG (a file a person drops on the page: hostile input,
// every length and offset checked) and insert one into a PNG (the page's downloads carry their settings as A1111's
// `parameters` chunk). Format: PNG spec (ISO/IEC 15948) §11.3.4: a chunk is length (u32 BE), type, data, CRC-32.
import { crc32 } from './crc32.ts';

export const PNG_SIGNATURE = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);

export class PngError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PngError';
  }
}

export interface PngChunk { type: string; data: Uint8Array; offset: number }

/** Every chunk up to and including IEND, CRCs verified. */
export function readChunks(png: Uint8Array): PngChunk[] {
  if (png.length < 8 || PNG_SIGNATURE.some((b, i) => png[i] !== b)) throw new PngError('not a PNG file (the 8-byte PNG signature is missing)');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: PngChunk[] = [];
  let offset = 8;
  while (true) {
    if (offset + 12 > png.length) throw new PngError(`PNG truncated: a chunk header at byte ${offset} runs past the end (${png.length} bytes)`);
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...png.subarray(offset + 4, offset + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new PngError(`PNG chunk at byte ${offset} has an invalid type ${JSON.stringify(type)}`);
    if (length > png.length - offset - 12) throw new PngError(`PNG chunk ${type} at byte ${offset} claims ${length} bytes, more than the file holds`);
    const data = png.subarray(offset + 8, offset + 8 + length);
    const stored = view.getUint32(offset + 8 + length);
    if (crc32(png.subarray(offset + 4, offset + 8 + length)) !== stored) throw new PngError(`PNG chunk ${type} at byte ${offset} fails its CRC check (the file is damaged)`);
    chunks.push({ type, data, offset });
    if (type === 'IEND') return chunks;
    offset += 12 + length;
  }
}

const latin1 = (bytes: Uint8Array) => Array.from(bytes, (b) => String.fromCharCode(b)).join('');

/** The NUL that ends a field starting at `from`; throws when missing. */
function nul(data: Uint8Array, from: number, what: string): number {
  const at = data.indexOf(0, from);
  if (at < 0) throw new PngError(`${what}: a field lacks its terminating NUL byte`);
  return at;
}

/** Inflated text longer than this is refused: a parameters text is a few KB, and a zTXt chunk of ~1 MB can claim a GB. */
export const MAX_PNG_TEXT_BYTES = 1 << 20;

/** Inflates chunk by chunk and stops at MAX_PNG_TEXT_BYTES, so a decompression bomb never reaches memory. */
async function inflate(bytes: Uint8Array, what: string): Promise<Uint8Array> {
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate')).getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      total += r.value.length;
      if (total > MAX_PNG_TEXT_BYTES) break;
      parts.push(r.value);
    }
  } catch (error) {
    throw new PngError(`${what}: compressed text does not inflate (${(error as Error).message})`);
  }
  if (total > MAX_PNG_TEXT_BYTES) {
    await reader.cancel().catch(() => undefined);
    throw new PngError(`${what}: compressed text inflates to more than ${MAX_PNG_TEXT_BYTES} bytes; refused`);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

/** The text chunks of a PNG as keyword → text (the first chunk of a keyword wins). */
export async function readPngText(png: Uint8Array): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const { type, data, offset } of readChunks(png)) {
    const what = `PNG ${type} chunk at byte ${offset}`;
    let entry: [string, string] | undefined;
    if (type === 'tEXt') {
      const end = nul(data, 0, what);
      entry = [latin1(data.subarray(0, end)), latin1(data.subarray(end + 1))];
    } else if (type === 'zTXt') {
      const end = nul(data, 0, what);
      if (data[end + 1] !== 0) throw new PngError(`${what}: unknown compression method ${data[end + 1]}`);
      entry = [latin1(data.subarray(0, end)), latin1(await inflate(data.subarray(end + 2), what))];
    } else if (type === 'iTXt') {
      const end = nul(data, 0, what);
      const compressed = data[end + 1];
      if (end + 3 > data.length) throw new PngError(`${what}: truncated`);
      const language = nul(data, end + 3, what);
      const translated = nul(data, language + 1, what);
      const body = data.subarray(translated + 1);
      const text = compressed === 1 ? await inflate(body, what) : body;
      entry = [latin1(data.subarray(0, end)), new TextDecoder('utf-8', { fatal: false }).decode(text)];
    }
    if (entry && !out.has(entry[0])) out.set(...entry);
  }
  return out;
}

/** One PNG chunk: length, type, data and the CRC over type + data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * A copy of `png` with a text chunk after IHDR: tEXt when the text is Latin-1, else uncompressed iTXt (UTF-8), as
 * A1111 (PIL) writes non-Latin-1 prompts. An existing chunk with the same keyword is replaced.
 */
export function withPngText(png: Uint8Array, keyword: string, text: string): Uint8Array {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new PngError(`PNG text keyword must be 1–79 printable ASCII characters, got ${JSON.stringify(keyword)}`);
  const chunks = readChunks(png);
  if (chunks[0]?.type !== 'IHDR') throw new PngError('PNG does not start with an IHDR chunk');
  const isLatin1 = [...text].every((ch) => ch.charCodeAt(0) <= 0xff);
  const key = Uint8Array.from(keyword, (ch) => ch.charCodeAt(0));
  const body = isLatin1 ? Uint8Array.from(text, (ch) => ch.charCodeAt(0)) : new TextEncoder().encode(text);
  // iTXt: keyword, NUL, compression flag 0, method 0, empty language tag, NUL, empty translated keyword, NUL.
  const header = isLatin1 ? [...key, 0] : [...key, 0, 0, 0, 0, 0];
  const data = new Uint8Array(header.length + body.length);
  data.set(header);
  data.set(body, header.length);
  const parts: Uint8Array[] = [PNG_SIGNATURE];
  for (const c of chunks) {
    const sameKey = (c.type === 'tEXt' || c.type === 'iTXt' || c.type === 'zTXt') && latin1(c.data.subarray(0, Math.max(0, c.data.indexOf(0)))) === keyword;
    if (!sameKey) parts.push(png.subarray(c.offset, c.offset + 12 + c.data.length));
    if (c.type === 'IHDR') parts.push(pngChunk(isLatin1 ? 'tEXt' : 'iTXt', data));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}

// safetensors read/write (https://github.com/huggingface/safetensors, format described in its README):
//   [u64 little-endian N][N bytes of UTF-8 JSON header][data section]
// The header maps tensor name -> { dtype, shape, data_offsets: [begin, end] } (offsets relative to the data section)
// plus an optional "__metadata__": { string: string }. Every field is treated as hostile input and checked the way
// the reference reader (safetensors' Rust `SafeTensors::read_metadata` / `validate`) does: header size bounded,
// offsets contiguous from 0 and covering the whole data section, byte length = product(shape) · dtype size.
// We decode F32 / F16 / BF16 / F64 to Float32Array; other dtypes are rejected with an error naming dtype and tensor.
// The writer pads the header with spaces to a multiple of 8 bytes and orders tensors by dtype size then name,
// as the reference `serialize` does, so every tensor starts aligned to its element size.

import { LoraError } from './errors.ts';
import { decodeBf16Array, decodeHalfArray, floatToHalf } from './float16.ts';
import { jsonLimitProblem } from '../util/json-limits.ts';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64';

export interface SafetensorsTensor {
  dtype: SafetensorsDtype; // dtype stored in the file; data is always decoded to float32
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

export interface TensorToWrite {
  shape: readonly number[];
  data: Float32Array | readonly number[];
  dtype?: 'F32' | 'F16'; // overrides the file-wide dtype for this tensor
}

/** LoRA uploads larger than this are refused before they are read (the largest SDXL LoRAs are well under 1 GB). */
export const MAX_LORA_FILE_BYTES = 2 ** 31;

/** The reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
/** Dtypes valid in safetensors that we do not decode: named in the error so the user knows the file is not corrupt. */
const KNOWN_UNSUPPORTED = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2',
  'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'C64'];

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(message: string): never {
  throw new LoraError(`safetensors: ${message}`, 'safetensors');
}

function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object'; // not String(v): a hostile object may carry a "toString" that is no function
  return typeof v === 'string' ? `the string ${JSON.stringify(v.slice(0, 40))}` : `${typeof v} ${String(v).slice(0, 40)}`;
}

const offsetText = (v: unknown) => (typeof v === 'number' ? String(v) : describeJson(v));

/** Short, printable form of a (possibly hostile, possibly huge) tensor name for messages. */
function nameOf(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
}

/** One tensor as the header describes it; begin/end are relative to the data section (which starts at 8 + N). */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * The JSON header's length from the file's first 8 bytes, checked against the file's size (`fileBytes`), so a
 * streaming reader (src/prepare/stream-safetensors.ts) applies the same rules as the in-memory one.
 */
export function readHeaderLength(first8: Uint8Array, fileBytes: number): number {
  if (fileBytes < 8 || first8.length < 8) fail(`file is ${fileBytes} bytes, shorter than the 8-byte header length (truncated or not a safetensors file)`);
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo; // exact up to 2^53; anything that large is rejected below anyway
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} bytes is absurdly large (limit ${MAX_HEADER_BYTES}); not a safetensors file?`);
  if (8 + n > fileBytes) fail(`header length ${n} bytes runs past the end of the file (${fileBytes} bytes, so at most ${fileBytes - 8}); file truncated?`);
  if (n < 2) fail(`header length ${n} bytes is too small to hold a JSON object`);
  return n;
}

function parseHeaderJson(headerBytes: Uint8Array): Record<string, unknown> {
  const n = headerBytes.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail(`header (${n} bytes) is not valid UTF-8`);
  }
  if (!text.startsWith('{')) fail(`header does not start with '{' (starts with ${JSON.stringify(text.slice(0, 20))})`);
  const tooBig = jsonLimitProblem(text, { maxChars: MAX_HEADER_BYTES });
  if (tooBig) fail(`header is refused: ${tooBig}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail(`header is ${describeJson(header)}, expected a JSON object`);
  return header as Record<string, unknown>;
}

function parseMetadata(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) fail(`__metadata__ is ${describeJson(raw)}, expected an object of strings`);
  const entries = Object.entries(raw as Record<string, unknown>);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') fail(`__metadata__ value for key ${nameOf(k)} is ${describeJson(v)}, but metadata values must be strings`);
  }
  return Object.fromEntries(entries) as Record<string, string>; // fromEntries: "__proto__" stays a plain own key
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseEntry(name: string, raw: unknown): SafetensorsEntry {
  const where = `tensor ${nameOf(name)}`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${where}: entry is ${describeJson(raw)}, expected { dtype, shape, data_offsets }`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`${where}: dtype is ${describeJson(dtype)}, expected a string`);
  if (!(dtype in DTYPE_BYTES)) {
    const known = KNOWN_UNSUPPORTED.includes(dtype) ? 'a safetensors dtype we do not support' : 'not a safetensors dtype';
    fail(`${where}: dtype ${JSON.stringify(dtype.slice(0, 40))} is ${known} (supported: F32, F16, BF16, F64)`);
  }
  if (!Array.isArray(shape)) fail(`${where}: shape is ${describeJson(shape)}, expected an array of non-negative integers`);
  let elements = 1;
  shape.forEach((d, i) => {
    if (!isCount(d)) fail(`${where}: shape[${i}] is ${describeJson(d)}, expected a non-negative integer`);
    elements *= d;
    if (!Number.isSafeInteger(elements)) fail(`${where}: shape [${shape.join(', ')}] has too many elements`);
  });
  if (!Array.isArray(offsets) || offsets.length !== 2) fail(`${where}: data_offsets is ${describeJson(offsets)}, expected [begin, end]`);
  const [begin, end] = offsets;
  if (!isCount(begin) || !isCount(end)) fail(`${where}: data_offsets [${offsetText(begin)}, ${offsetText(end)}] must be non-negative integers`);
  if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before begin`);
  const bytesNeeded = elements * DTYPE_BYTES[dtype as SafetensorsDtype];
  if (end - begin !== bytesNeeded) {
    fail(`${where}: shape [${shape.join(', ')}] of ${dtype} needs ${bytesNeeded} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape.slice(), begin, end };
}

/** Offsets must tile [0, dataLength) exactly: no gap, no overlap, nothing past the end, nothing left over. */
function checkLayout(entries: SafetensorsEntry[], dataLength: number): void {
  for (const e of entries) {
    if (e.end > dataLength) fail(`tensor ${nameOf(e.name)}: data_offsets [${e.begin}, ${e.end}] run past the end of the data section (${dataLength} bytes)`);
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: SafetensorsEntry | null = null;
  for (const e of sorted) {
    if (e.begin < pos) fail(`tensor ${nameOf(e.name)}: data_offsets [${e.begin}, ${e.end}] overlap tensor ${nameOf(prev!.name)} [${prev!.begin}, ${prev!.end}]`);
    if (e.begin > pos) {
      const after = prev ? `after tensor ${nameOf(prev.name)} [${prev.begin}, ${prev.end}]` : 'at the start of the data section';
      fail(`gap of ${e.begin - pos} bytes ${after}, before tensor ${nameOf(e.name)} [${e.begin}, ${e.end}]`);
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLength) fail(`data section is ${dataLength} bytes but the tensors cover only ${pos} (trailing bytes not described by the header)`);
}

/**
 * A tensor's values from exactly its own bytes (any alignment: they are copied into a fresh buffer first, since
 * tensors in a file need not be aligned for typed-array views).
 */
export function decodeTensorBytes(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const n = bytes.length / DTYPE_BYTES[dtype];
  const buf = new Uint8Array(bytes).buffer; // a copy even for a Node Buffer, whose slice() is a view of a shared pool
  if (!LITTLE_ENDIAN_HOST) return decodeWithDataView(new DataView(buf), dtype, n);
  switch (dtype) {
    case 'F32': return new Float32Array(buf);
    case 'F16': return decodeHalfArray(new Uint16Array(buf));
    case 'BF16': return decodeBf16Array(new Uint16Array(buf));
    case 'F64': return Float32Array.from(new Float64Array(buf));
  }
}

function decodeWithDataView(view: DataView, dtype: SafetensorsDtype, n: number): Float32Array {
  const out = new Float32Array(n);
  const u16 = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    if (dtype === 'F32') out[i] = view.getFloat32(4 * i, true);
    else if (dtype === 'F64') out[i] = view.getFloat64(8 * i, true);
    else u16[i] = view.getUint16(2 * i, true);
  }
  if (dtype === 'F16') return decodeHalfArray(u16);
  if (dtype === 'BF16') return decodeBf16Array(u16);
  return out;
}

/**
 * Validates a header (its N JSON bytes, without the 8-byte length) against the data section's length: every rule
 * of the reference reader. Shared by readSafetensors and the streaming reader.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataLength: number): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  const header = parseHeaderJson(headerBytes);
  const metadata = parseMetadata(header.__metadata__);
  const entries = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, raw]) => parseEntry(name, raw));
  checkLayout(entries, dataLength);
  return { entries, metadata };
}

/** Parse a whole safetensors file held in memory. Throws LoraError (code 'safetensors') with a specific message. */
export function readSafetensors(bytes: Uint8Array): SafetensorsFile {
  const n = readHeaderLength(bytes, bytes.length);
  const dataStart = 8 + n;
  const { entries, metadata } = parseSafetensorsHeader(bytes.subarray(8, dataStart), bytes.length - dataStart);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeTensorBytes(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.dtype) });
  }
  return { tensors, metadata };
}

function encode(name: string, t: TensorToWrite, dtype: 'F32' | 'F16'): Uint8Array {
  const n = t.data.length;
  if (dtype === 'F32') {
    const f = Float32Array.from(t.data);
    const out = new Uint8Array(4 * n);
    const view = new DataView(out.buffer);
    for (let i = 0; i < n; i++) view.setFloat32(4 * i, f[i], true);
    return out;
  }
  const out = new Uint8Array(2 * n);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = t.data[i];
    const h = floatToHalf(v);
    if ((h & 0x7c00) === 0x7c00 && Number.isFinite(v)) {
      throw new LoraError(`safetensors: tensor ${nameOf(name)}: value ${v} at index ${i} overflows float16 (max 65504); write F32 instead`, 'value');
    }
    view.setUint16(2 * i, h, true);
  }
  return out;
}

function checkTensorToWrite(name: string, t: TensorToWrite): void {
  if (name === '__metadata__') throw new LoraError('safetensors: a tensor cannot be named "__metadata__"', 'argument');
  let elements = 1;
  for (const d of t.shape) {
    if (!isCount(d)) throw new LoraError(`safetensors: tensor ${nameOf(name)}: shape [${t.shape.join(', ')}] has an invalid dimension`, 'argument');
    elements *= d;
  }
  if (elements !== t.data.length) {
    throw new LoraError(`safetensors: tensor ${nameOf(name)}: shape [${t.shape.join(', ')}] has ${elements} elements but data has ${t.data.length}`, 'argument');
  }
}

/**
 * Serialize tensors (and optional string metadata) to safetensors bytes. `options.dtype` (default F32) applies to
 * every tensor without its own `dtype`. F16 rounds to nearest even and refuses values that overflow.
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, TensorToWrite> | Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
  options: { dtype?: 'F32' | 'F16' } = {},
): Uint8Array {
  const list: [string, TensorToWrite][] = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const fileDtype = options.dtype ?? 'F32';
  const items = list.map(([name, t]) => {
    checkTensorToWrite(name, t);
    const dtype: 'F32' | 'F16' = t.dtype ?? fileDtype;
    return { name, t, dtype, size: DTYPE_BYTES[dtype] };
  });
  // Larger elements first, then by name: keeps every tensor aligned to its element size (reference ordering).
  items.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const chunks: Uint8Array[] = [];
  const layout: SafetensorsEntry[] = [];
  let offset = 0;
  for (const { name, t, dtype } of items) {
    const chunk = encode(name, t, dtype);
    layout.push({ name, dtype, shape: [...t.shape], begin: offset, end: offset + chunk.length });
    chunks.push(chunk);
    offset += chunk.length;
  }
  const head = encodeSafetensorsHeader(layout, metadata);
  const out = new Uint8Array(head.length + offset);
  out.set(head, 0);
  let pos = head.length;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/**
 * The 8-byte length and the JSON header (padded with spaces to a multiple of 8) for tensors laid out as `entries`
 * says, in that order; the data section follows. Shared by writeSafetensors and the streaming writer.
 */
export function encodeSafetensorsHeader(entries: readonly SafetensorsEntry[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new LoraError(`safetensors: metadata value for ${nameOf(k)} must be a string`, 'argument');
    }
    header.__metadata__ = metadata;
  }
  for (const { name, dtype, shape, begin, end } of entries) {
    if (name === '__metadata__') throw new LoraError('safetensors: a tensor cannot be named "__metadata__"', 'argument');
    Object.defineProperty(header, name, { value: { dtype, shape: [...shape], data_offsets: [begin, end] }, enumerable: true });
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  new DataView(out.buffer).setUint32(0, padded, true); // high 32 bits stay 0
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  return out;
}

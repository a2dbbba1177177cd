// Structure-aware mutations of safetensors files for the fuzzer: the header JSON mutated and re-framed with a
// correct (or a hostile) length prefix, one tensor entry given a hostile dtype / shape / data_offsets, float poison
// (NaN, ±Inf in the tensor's own dtype) written into the data, and, for LoRA files, tensor-level edits that keep the
// container valid (renamed keys in another format, dropped halves, alpha tensors, 3×3 conv shapes, rank mismatch,
// PEFT alpha metadata) so the LoRA layer above the container is reached.
import { INTERESTING_INTS, mutateBytes, mutateJsonTree, pick, Raw, toJson, u64le, type JsonLike, type Random } from './mutate.ts';

interface Split {
  header: Record<string, JsonLike>;
  data: Uint8Array;
}

/** A valid safetensors file (a seed) split into its header object and data section. */
export function splitSafetensors(bytes: Uint8Array): Split {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, JsonLike>;
  return { header, data: bytes.subarray(8 + n) };
}

/** Frames a header text and data section; `length` overrides the header length prefix. */
export function frame(headerText: string, data: Uint8Array, length?: number): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  out.set(u64le(length ?? json.length), 0);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

interface Tensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** Packs tensors (any dtype string, shapes taken as given) with offsets that tile the data section exactly. */
function pack(tensors: Map<string, Tensor>, metadata: JsonLike | undefined): Uint8Array {
  const header: Record<string, JsonLike> = {};
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    Object.defineProperty(header, name, { value: { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] }, enumerable: true });
    offset += t.bytes.length;
  }
  const data = new Uint8Array(offset);
  offset = 0;
  for (const t of tensors.values()) {
    data.set(t.bytes, offset);
    offset += t.bytes.length;
  }
  return frame(toJson(header), data);
}

function unpack({ header, data }: Split): { tensors: Map<string, Tensor>; metadata: JsonLike | undefined } {
  const tensors = new Map<string, Tensor>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = raw as { dtype: string; shape: number[]; data_offsets: [number, number] };
    tensors.set(name, { dtype: e.dtype, shape: e.shape, bytes: data.slice(e.data_offsets[0], e.data_offsets[1]) });
  }
  return { tensors, metadata: header.__metadata__ };
}

const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'U8', 'BOOL', 'F8_E4M3', 'f32', 'F128', '', 'F32 '];
const ELEMENT: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

function poison(r: Random, t: Tensor): void {
  if (t.bytes.length === 0) return;
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const size = ELEMENT[t.dtype] ?? 1;
  const at = r.int(t.bytes.length / size) * size;
  if (size === 4) view.setUint32(at, pick(r, [0x7fc00000, 0x7f800000, 0xff800000]), true);
  else if (size === 2) view.setUint16(at, pick(r, t.dtype === 'BF16' ? [0x7f80, 0x7fc0, 0xff80] : [0x7c00, 0xfc00, 0x7e00]), true);
  else if (size === 8) view.setFloat64(at, pick(r, [NaN, Infinity, -Infinity, 1e300]), true);
}

const RENAMES: [RegExp, string][] = [
  [/\.lora\.down\.weight$/, '.lora_A.weight'], [/\.lora\.up\.weight$/, '.lora_B.weight'],
  [/\.lora_A\.weight$/, '.lora.down.weight'], [/\.lora_B\.weight$/, '.lora.up.weight'],
  [/\.lora_down\.weight$/, '.lora.down.weight'], [/\.lora_up\.weight$/, '.hada_w1_a'],
  [/\.(lora\.down|lora_A|lora_down)\.weight$/, '.alpha'], [/^unet\./, 'text_encoder.'], [/^lora_unet_/, 'lora_te1_'],
  [/^unet\./, 'base_model.model.'], [/^unet\./, ''], [/^lora_unet_/, 'lora_unet_input_blocks_1_1_'],
  [/to_q/, 'to_k'], [/\.0\./, '.9.'], [/attn1/, 'attn1.processor.to_q_lora'], [/weight$/, 'weight.lora_mid.weight'],
];

/** Edits that keep a valid container, aimed at the LoRA layer (formats.ts). */
function mutateTensors(r: Random, split: Split): Uint8Array {
  const { tensors, metadata } = unpack(split);
  const names = [...tensors.keys()];
  let meta = metadata;
  for (let k = 1 + r.int(3); k > 0 && names.length > 0; k--) {
    const name = pick(r, names);
    const t = tensors.get(name);
    if (!t) continue;
    const op = r.int(10);
    if (op === 0) {
      const [re, to] = pick(r, RENAMES);
      tensors.delete(name);
      tensors.set(name.replace(re, to), t);
    } else if (op === 1) tensors.delete(name);
    else if (op === 2) {
      const base = name.replace(/\.(lora\.(down|up)|lora_[AB]|lora_(down|up))\.weight$/, '');
      const value = pick(r, [0, -1, 4, NaN, Infinity, 1e30]);
      tensors.set(`${base}.alpha`, pick(r, [{ dtype: 'F32', shape: [], bytes: f32Bytes([value]) }, { dtype: 'F32', shape: [2], bytes: f32Bytes([value, 1]) }]));
    } else if (op === 3 && t.shape.length === 2) {
      // 3×3 conv or 1×1 conv shapes with matching data length
      const k2 = pick(r, [1, 3]);
      const bytes = new Uint8Array(t.bytes.length * k2 * k2);
      bytes.set(t.bytes);
      tensors.set(name, { ...t, shape: [...t.shape, k2, k2], bytes });
    } else if (op === 4 && t.shape.length >= 2 && t.shape[0] > 1) {
      // one row fewer: rank mismatch between down and up (or features that do not fit the target)
      const row = t.bytes.length / t.shape[0];
      tensors.set(name, { ...t, shape: [t.shape[0] - 1, ...t.shape.slice(1)], bytes: t.bytes.slice(row) });
    } else if (op === 5) {
      poison(r, t);
    } else if (op === 6) {
      tensors.set(name, { ...t, shape: [...t.shape].reverse() }); // transposed claim, same bytes
    } else if (op === 7) {
      const adapter = { 'unet.lora_alpha': pick<JsonLike>(r, [4, 0, -4, 'x', null, new Raw('NaN')]), 'unet.alpha_pattern': pick<JsonLike>(r, [{}, { to_q: 8 }, { '.*to_q': 8 }, { to_k: 'x' }, []]), 'unet.use_rslora': pick(r, [true, false]) };
      meta = { ...(typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? meta : {}), lora_adapter_metadata: r.int(4) === 0 ? '{"unet.lora_alpha": ' : toJson(adapter) };
    } else if (op === 8) {
      tensors.set(pick(r, ['x'.repeat(5000) + '.lora.down.weight', `${'a.'.repeat(3000)}processor.${'b_'.repeat(3000)}_lora.down.weight`, `lora_unet_${'_'.repeat(4000)}.lora_down.weight`]), t);
    } else {
      // Another float dtype, data resized to fit (the bits reinterpreted: odd values, sometimes NaN / Inf).
      const dtype = pick(r, ['F16', 'BF16', 'F64']);
      const bytes = new Uint8Array(ELEMENT[dtype] * t.shape.reduce((a, b) => a * b, 1));
      bytes.set(t.bytes.subarray(0, bytes.length));
      tensors.set(name, { dtype, shape: t.shape, bytes });
    }
  }
  return pack(tensors, meta);
}

/** One entry of the header given a hostile dtype, shape or data_offsets (then re-framed with the right length). */
function mutateEntry(r: Random, split: Split): Uint8Array {
  const header = split.header;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  if (names.length === 0) return frame(toJson(header), split.data);
  const name = pick(r, names);
  const e = { ...(header[name] as Record<string, JsonLike>) };
  const field = pick(r, ['dtype', 'shape', 'data_offsets', 'data_offsets', 'shape']);
  const big = () => pick(r, INTERESTING_INTS);
  if (field === 'dtype') e.dtype = pick(r, DTYPES);
  else if (field === 'shape') e.shape = pick<JsonLike>(r, [[big(), big()], [big()], [2 ** 31, 2 ** 31, 2 ** 31, 0], [-4, -4], [1.5, 2], [], [0], null, '4']);
  else {
    const [b, end] = (e.data_offsets as number[]) ?? [0, 0];
    e.data_offsets = pick<JsonLike>(r, [[b, big()], [big(), end], [end, b], [b, end, 1], [b], [-1, end], [b, end + 1], [b - 1, end - 1], [1e11, 1e11 + 4], null]);
  }
  Object.defineProperty(header, name, { value: e, enumerable: true });
  return frame(toJson(header), split.data);
}

/** A random structure-aware or byte-level mutation of a valid safetensors file. */
export function mutateSafetensors(r: Random, bytes: Uint8Array, loraAware: boolean): Uint8Array {
  const split = splitSafetensors(bytes);
  const n = bytes.length - split.data.length - 8;
  const choice = r.int(loraAware ? 10 : 8);
  if (choice <= 1) {
    let header: JsonLike = split.header;
    for (let k = 1 + r.int(2); k > 0; k--) header = mutateJsonTree(r, header);
    return frame(toJson(header), split.data, r.int(8) === 0 ? pick(r, INTERESTING_INTS) : undefined);
  }
  if (choice <= 3) return mutateEntry(r, split);
  if (choice === 4) {
    const out = bytes.slice();
    out.set(u64le(pick(r, [...INTERESTING_INTS, n + 1, n - 1, bytes.length, 1e11])), 0);
    return out;
  }
  if (choice === 5) {
    const { tensors, metadata } = unpack(split);
    const t = pick(r, [...tensors.values()]);
    if (t) poison(r, t);
    return pack(tensors, metadata);
  }
  if (choice <= 7) {
    const cuts = [8, 8 + n, 8 + n + 1];
    for (const v of Object.values(split.header)) {
      const off = (v as { data_offsets?: number[] })?.data_offsets;
      if (Array.isArray(off)) cuts.push(8 + n + off[0], 8 + n + off[1]);
    }
    return mutateBytes(r, bytes, cuts);
  }
  return mutateTensors(r, split);
}

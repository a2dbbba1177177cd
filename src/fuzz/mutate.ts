// The fuzzer's seeded mutators: byte-level (bit flips, interesting integers such as huge, negative or 2^53+ lengths
// and offsets, truncation at structural boundaries, inserted / deleted / duplicated ranges, random bytes) and
// JSON-level (a random node replaced by a hostile value: NaN / Infinity tokens, huge or negative numbers, wrong types,
// deep nesting, long strings, shapes whose product overflows, duplicate and prototype keys). Everything is drawn
// from one `Random`, so an input is named by (seed, index) and can be regenerated exactly.
import type { Random } from '../train/random.ts';

export type { Random } from '../train/random.ts';

export const pick = <T>(r: Random, list: readonly T[]): T => list[r.int(list.length)];
const chance = (r: Random, p: number) => r.uniform() < p;

/** Integers that break length and offset arithmetic: 0, ±1, int32 / uint32 / 2^53 / 2^63 edges, 100 GB. */
export const INTERESTING_INTS = [
  0, 1, 2, 7, 8, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 1e11, 2 ** 53 - 1, 2 ** 53,
  2 ** 53 + 2, 2 ** 63, 2 ** 64 - 1, -1, -2, -(2 ** 31), -(2 ** 53),
];

/** Float bit patterns (little-endian) that parsers must notice: NaN, ±Inf, float16 / bfloat16 Inf and NaN. */
const POISON_F32 = [0x7fc00000, 0x7f800000, 0xff800000, 0x7f7fffff];
const POISON_U16 = [0x7c00, 0xfc00, 0x7e00, 0x7f80, 0x7fc0];

/** Little-endian 8 bytes for an integer (negative numbers as two's complement, like a C int64). */
export function u64le(value: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(Math.trunc(value))), true);
  return out;
}

function splice(bytes: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length - remove + insert.length);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.length);
  return out;
}

function randomBytes(r: Random, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r.int(256);
  return out;
}

/** Positions where a parser changes state: JSON punctuation, the first bytes, the last bytes, and `extra`. */
function boundaries(bytes: Uint8Array, extra: readonly number[]): number[] {
  const out = [0, 1, 7, 8, 9, bytes.length - 1, ...extra];
  const step = Math.max(1, Math.floor(bytes.length / 4096)); // sampled on large inputs, so this stays O(4096)
  for (let i = 0; i < bytes.length; i += step) if ('{}[],:"'.includes(String.fromCharCode(bytes[i]))) out.push(i, i + 1);
  return out.filter((p) => p >= 0 && p <= bytes.length);
}

type ByteMutation = (r: Random, b: Uint8Array, cuts: readonly number[]) => Uint8Array;

const BYTE_MUTATIONS: ByteMutation[] = [
  function flipBits(r, b) {
    const out = b.slice();
    for (let k = 1 + r.int(8); k > 0 && out.length > 0; k--) out[r.int(out.length)] ^= 1 << r.int(8);
    return out;
  },
  function setByte(r, b) {
    if (b.length === 0) return b;
    const out = b.slice();
    out[r.int(out.length)] = pick(r, [0, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x5b, 0x2c, 0x3a, 0x2d, 0x30, 0x39, 0x5c, 0x20]);
    return out;
  },
  function truncateAtBoundary(r, b, cuts) {
    return b.slice(0, pick(r, boundaries(b, cuts)));
  },
  function truncateAnywhere(r, b) {
    return b.slice(0, r.int(b.length + 1));
  },
  function interestingInteger(r, b, cuts) {
    // Overwrites 1, 2, 4 or 8 bytes at a boundary (often a length or offset field) with an interesting integer.
    const at = chance(r, 0.6) ? pick(r, boundaries(b, cuts)) : r.int(b.length + 1);
    const full = u64le(pick(r, INTERESTING_INTS));
    const width = pick(r, [1, 2, 4, 8]);
    return splice(b, at, Math.min(width, b.length - at), full.subarray(0, width));
  },
  function poisonFloat(r, b) {
    if (b.length < 4) return b;
    const out = b.slice();
    const view = new DataView(out.buffer);
    const at = r.int(out.length - 3);
    if (chance(r, 0.5)) view.setUint32(at, pick(r, POISON_F32), true);
    else view.setUint16(at, pick(r, POISON_U16), true);
    return out;
  },
  function insertRandom(r, b) {
    return splice(b, r.int(b.length + 1), 0, randomBytes(r, 1 + r.int(chance(r, 0.1) ? 4096 : 16)));
  },
  function deleteRange(r, b) {
    const at = r.int(b.length + 1);
    return splice(b, at, Math.min(b.length - at, 1 + r.int(64)), new Uint8Array());
  },
  function duplicateRange(r, b) {
    if (b.length === 0) return b;
    const at = r.int(b.length);
    const chunk = b.slice(at, at + 1 + r.int(256));
    return splice(b, r.int(b.length + 1), 0, chunk);
  },
  function randomFile(r) {
    return randomBytes(r, pick(r, [0, 1, 7, 8, 9, 16, 64, 1024]));
  },
];

/** 1 to 4 stacked byte-level mutations. `cuts` are format boundaries the target knows (header end, tensor starts). */
export function mutateBytes(r: Random, bytes: Uint8Array, cuts: readonly number[] = []): Uint8Array {
  let out = bytes;
  for (let k = 1 + r.int(chance(r, 0.8) ? 1 : 4); k > 0; k--) out = pick(r, BYTE_MUTATIONS)(r, out, cuts);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------------------------------

/** Verbatim JSON text inside a value (NaN, Infinity, deep nesting, duplicate keys): `toJson` emits it as is. */
export class Raw {
  constructor(readonly text: string) {}
}

export type JsonLike = null | boolean | number | string | Raw | JsonLike[] | { [key: string]: JsonLike };

/** Marks an object member whose Raw value is a whole `"key":value` member (a duplicate key). */
const DUPLICATE = '\u0000duplicate-key:';

/** JSON.stringify that understands Raw and duplicate-key members (depth is bounded by what the mutators build). */
export function toJson(value: JsonLike): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const member = (k: string) => (k.startsWith(DUPLICATE) ? toJson(value[k]) : `${JSON.stringify(k)}:${toJson(value[k])}`);
    return `{${Object.keys(value).map(member).join(',')}}`;
  }
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value);
}

const deep = (depth: number, open = '[', close = ']') => new Raw(open.repeat(depth) + close.repeat(depth));

/** Hostile replacement values for one JSON node. */
function hostileValue(r: Random, original: JsonLike): JsonLike {
  const choices: (() => JsonLike)[] = [
    () => pick(r, INTERESTING_INTS),
    () => -pick(r, INTERESTING_INTS),
    () => pick(r, [0.5, -0.5, 1e308, -1e308, 5e-324, 1e21]),
    () => new Raw(pick(r, ['NaN', 'Infinity', '-Infinity', '1e999', '-1e999', '-0'])),
    () => pick(r, [null, true, false, '', '0', 'a', '__proto__', '../../etc/passwd', 'https://example.invalid/x']),
    () => 'x'.repeat(pick(r, [1000, 100_000, 1_000_000])),
    () => deep(pick(r, [64, 1000, 100_000])),
    () => ((n) => new Raw('{"a":'.repeat(n) + '1' + '}'.repeat(n)))(pick(r, [1000, 100_000])),
    () => [],
    () => ({}),
    () => ({ toString: 1, valueOf: 'x', toJSON: null, length: 2 ** 32 }), // breaks String(v), `${v}` and array-likes
    () => pick(r, [[2 ** 31, 2 ** 31, 2 ** 31], [2 ** 53, 2], [-1, 4], [0, 2 ** 60], [1e6, 1e6, 1e6], [1.5], ['4']]),
    () => Array.from({ length: pick(r, [1000, 100_000]) }, () => 0),
    () => (Array.isArray(original) ? [...original, ...original].map(clone) : [clone(original)]),
    () => (typeof original === 'string' ? original + pick(r, ['\u0000', '\ud800', '"', '\\', '.', '/..', '.weight']) : toJson(original).slice(0, 1000)),
    () => (typeof original === 'number' ? pick(r, [original + 1, original - 1, original * 2 ** 20, -original, original + 0.5]) : original),
  ];
  return pick(r, choices)();
}

type Container = JsonLike[] | { [key: string]: JsonLike };
interface Slot { parent: Container; key: string | number }

/** Every slot of the tree, up to `limit` of them (picked uniformly by reservoir sampling beyond that is not needed). */
function slots(value: JsonLike, limit = 20_000): Slot[] {
  const out: Slot[] = [];
  const stack: JsonLike[] = [value];
  while (stack.length > 0 && out.length < limit) {
    const v = stack.pop()!;
    if (v instanceof Raw || v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) v.forEach((child, i) => { out.push({ parent: v, key: i }); stack.push(child); });
    else for (const k of Object.keys(v)) { out.push({ parent: v, key: k }); stack.push(v[k]); }
  }
  return out;
}

const getSlot = (s: Slot): JsonLike => (s.parent as Record<string | number, JsonLike>)[s.key];

/** A deep copy (keeps Raw leaves), so a value moved elsewhere in the tree never makes a cycle. */
function clone(v: JsonLike): JsonLike {
  if (v instanceof Raw || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(clone);
  const out: { [key: string]: JsonLike } = {};
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: clone(v[k]), enumerable: true, writable: true, configurable: true });
  return out;
}
/** defineProperty, so that a "__proto__" key stays an own key (as JSON.parse makes it) instead of a prototype. */
const setSlot = (s: Slot, v: JsonLike) => void Object.defineProperty(s.parent, s.key, { value: v, enumerable: true, writable: true, configurable: true });

/** One structural mutation of a JSON tree, in place; returns the (possibly new) root. */
export function mutateJsonTree(r: Random, root: JsonLike): JsonLike {
  const all = slots(root);
  if (all.length === 0 || chance(r, 0.03)) return hostileValue(r, root);
  const s = pick(r, all);
  const op = r.int(6);
  if (op <= 2) setSlot(s, hostileValue(r, getSlot(s)));
  else if (op === 3) {
    if (Array.isArray(s.parent)) s.parent.splice(s.key as number, 1);
    else delete s.parent[s.key as string];
  } else if (op === 4 && !Array.isArray(s.parent)) {
    // A duplicate key: JSON.parse keeps the last one; the raw text has both.
    const other = pick(r, all);
    const dup = new Raw(`${JSON.stringify(s.key)}:${toJson(getSlot(other))}`);
    setSlot({ parent: s.parent, key: `${DUPLICATE}${r.int(1e9)}` }, dup);
  } else if (op === 5 && !Array.isArray(s.parent)) {
    setSlot({ parent: s.parent, key: pick(r, ['__proto__', 'constructor', 'toString', '', 'x'.repeat(300)]) }, clone(getSlot(s)));
  } else setSlot(s, clone(getSlot(pick(r, all)))); // a valid value from the wrong place
  return root;
}

/** 1 to 3 JSON mutations of `text` (which must parse); sometimes followed by byte-level damage. */
export function mutateJsonText(r: Random, text: string): string {
  // Python's json.dumps writes bare NaN / Infinity (scheduler configs): keep them as Raw leaves.
  const marked = text.replace(/(?<=[:[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '"\\u0001raw:$1"');
  let root = JSON.parse(marked, (_k, v) => (typeof v === 'string' && v.startsWith('\u0001raw:') ? new Raw(v.slice(5)) : v)) as JsonLike;
  for (let k = 1 + r.int(3); k > 0; k--) root = mutateJsonTree(r, root);
  const out = toJson(root);
  if (!chance(r, 0.15)) return out;
  return new TextDecoder().decode(mutateBytes(r, new TextEncoder().encode(out)));
}

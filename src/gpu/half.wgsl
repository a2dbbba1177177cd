// binary16 ("float16") values held two per u32 word, read and written with the core builtins unpack2x16float /
// pack2x16float: no `enable f16;`, so these work on every adapter, with or without the 'shader-f16' feature.
// Element 2k sits in the low half of word k and 2k+1 in the high half (WebGPU buffers are little-endian: the bytes of
// a Uint16Array, of a safetensors F16 tensor, of an ORT float16 tensor). element-type.ts prepends this file to the
// kernels that use it (merge.wgsl, cast.wgsl); arithmetic stays in f32.

// Element `element` of a word whose first element has an even index: the low half for even, the high half for odd.
fn halfOf(word: u32, element: u32) -> f32 {
  let pair = unpack2x16float(word);
  return select(pair.x, pair.y, (element & 1u) == 1u);
}

// Index of the word that holds element k of an array<u32> of binary16 (isHalf) or f32 values.
fn wordOf(k: u32, isHalf: bool) -> u32 {
  return select(k, k >> 1u, isHalf);
}

// Element k's value, given the word wordOf(k, isHalf) of that array.
fn valueOf(word: u32, k: u32, isHalf: bool) -> f32 {
  if (isHalf) {
    return halfOf(word, k);
  }
  return bitcast<f32>(word);
}

// The word a thread writes when one thread owns each word that elements [first, first + count) of a binary16 array
// touch (thread t: word ⌊first/2⌋ + t), and which of its two elements (lo, lo + 1) lie in the range. A thread whose
// word is past the range owns neither.
struct OwnedWord {
  index: u32,
  lo: u32,
  ownLo: bool,
  ownHi: bool,
}

fn ownedWord(t: u32, first: u32, count: u32) -> OwnedWord {
  let index = (first >> 1u) + t;
  let lo = index * 2u;
  let end = first + count;
  return OwnedWord(index, lo, lo >= first && lo < end, lo + 1u < end);
}

// The binary16 bits of v. WGSL lets pack2x16float pick either neighbour of an inexact value and leaves values past
// the finite range indeterminate (SwiftShader turns them and ±Inf into NaN), so NaN, ±Inf and overflow are encoded
// here, as src/lora/float16.ts's floatToHalf does: |v| ≥ 65520 (past 65504 by half an ulp or more) is ±Inf, NaN is
// the quiet NaN 0x7e00 with v's sign. Tested on the bit patterns by cast.test.ts.
fn halfBits(v: f32) -> u32 {
  let bits = bitcast<u32>(v);
  let magnitude = bits & 0x7fffffffu;
  let sign = (bits >> 16u) & 0x8000u;
  if (magnitude > 0x7f800000u) {
    return sign | 0x7e00u;
  }
  if (magnitude >= 0x477ff000u) { // 65520.0
    return sign | 0x7c00u;
  }
  return pack2x16float(vec2<f32>(v, 0.0)) & 0xffffu;
}

// `word` with the half that holds `element` replaced by `bits`; the other half is kept bit for bit.
fn withHalf(word: u32, element: u32, bits: u32) -> u32 {
  if ((element & 1u) == 1u) {
    return (word & 0xffffu) | (bits << 16u);
  }
  return (word & 0xffff0000u) | bits;
}

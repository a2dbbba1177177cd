// Weight merge: out = prev + s0·(B0·A0) + s1·(B1·A1) + sd·D over one chunk of W's elements (merge.ts plans the work).
//   A = LoRA down [rank, in], B = LoRA up [out, rank] (float32), D = dense delta (W's shape, float32 or float16).
//   layout 0 ('out-in', Linear / 1x1 Conv): W is [out, in], element (row, col) = (o, i).
//   layout 1 ('in-out', diffusers MatMul export): W is [in, out], element (row, col) = (i, o).
//   In both, ΔW[o, i] = Σ_k B[o, k]·A[k, i]. A job without LoRA terms never computes (o, i): any shape works.
// One thread per output word: one element when W is f32, two when W is f16 (WEIGHT_F16; half.wgsl, prepended by
// merge.ts, converts). The thread that owns a word writes its halves inside the chunk and keeps the other half bit for
// bit: W' may start at an odd element (the worker's stacked [θ_pos; θ_neg] buffers put θ_neg right after θ_pos), and
// no other thread of the dispatch writes that word. Chunks and jobs that share a word are separate dispatches, which
// WebGPU orders.
// The merge is bandwidth-bound on W (read W, write W'): for rank ≤ ~64 a thread does at most a few hundred FMAs on
// A/B values that the caches serve (A and B are rank·(in+out) elements, tiny next to W), so a shared-memory tiled
// kernel would only add barriers. Sums are f32 whatever the storage type: f16 arithmetic would save no bandwidth and
// would lose digits over the rank sum.
// prev is `base` on a chunk's first pass (fromBase = 1), `out` itself on later passes (more than two LoRAs or one
// dense term per pass) and when merging in place.
// base, out and dense are bound as windows starting at a 256-byte aligned offset at or before the chunk's first
// element; baseWinOff / outWinOff / denseWinOff are that element's index inside each window (the tensors may start
// at any element of their buffers). Unused slots are bound to a dummy buffer with rank 0 / hasDense 0, never read.

override WEIGHT_F16: bool = false; // base and out hold binary16
override DENSE_F16: bool = false;  // the dense delta holds binary16

struct Params {
  count: u32,        // elements in this chunk
  first: u32,        // the chunk's first element, as a row-major index into W
  baseWinOff: u32,
  cols: u32,         // row length of W: in for layout 0, out for layout 1 (1 when there is no LoRA term)
  inOut: u32,        // 0 = out-in, 1 = in-out
  inFeatures: u32,   // row stride of A
  rank0: u32,
  rank1: u32,
  fromBase: u32,
  hasDense: u32,
  gridX: u32,        // workgroups along x; the dispatch is folded into y past maxComputeWorkgroupsPerDimension
  outWinOff: u32,
  denseWinOff: u32,
  scale0: f32,
  scale1: f32,
  denseScale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> base: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read> down0: array<f32>;
@group(0) @binding(4) var<storage, read> up0: array<f32>;
@group(0) @binding(5) var<storage, read> down1: array<f32>;
@group(0) @binding(6) var<storage, read> up1: array<f32>;
@group(0) @binding(7) var<storage, read> dense: array<u32>;

const WG: u32 = 256u;

// Element j of the chunk in base / dense (an f16 element is one half of a word: half.wgsl).
fn baseAt(j: u32) -> f32 {
  let k = p.baseWinOff + j;
  return valueOf(base[wordOf(k, WEIGHT_F16)], k, WEIGHT_F16);
}

fn denseAt(j: u32) -> f32 {
  let k = p.denseWinOff + j;
  return valueOf(dense[wordOf(k, DENSE_F16)], k, DENSE_F16);
}

// Σ_k B[o, k]·A[k, i] for one LoRA; 0 when rank is 0.
fn lora0(o: u32, i: u32) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < p.rank0; k++) {
    s += up0[o * p.rank0 + k] * down0[k * p.inFeatures + i];
  }
  return s;
}

fn lora1(o: u32, i: u32) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < p.rank1; k++) {
    s += up1[o * p.rank1 + k] * down1[k * p.inFeatures + i];
  }
  return s;
}

// prev + this pass's terms at element j of the chunk.
fn merged(j: u32, prev: f32) -> f32 {
  var acc = prev;
  if (p.rank0 > 0u || p.rank1 > 0u) {
    let e = p.first + j;
    let row = e / p.cols;
    let col = e - row * p.cols;
    let o = select(row, col, p.inOut == 1u);
    let i = select(col, row, p.inOut == 1u);
    if (p.rank0 > 0u) {
      acc += p.scale0 * lora0(o, i);
    }
    if (p.rank1 > 0u) {
      acc += p.scale1 * lora1(o, i);
    }
  }
  if (p.hasDense != 0u) {
    acc += p.denseScale * denseAt(j);
  }
  return acc;
}

fn mergeFloatWord(t: u32) {
  if (t >= p.count) {
    return;
  }
  let d = p.outWinOff + t;
  var prev: f32;
  if (p.fromBase != 0u) {
    prev = baseAt(t);
  } else {
    prev = bitcast<f32>(dst[d]);
  }
  dst[d] = bitcast<u32>(merged(t, prev));
}

fn mergeHalfWord(t: u32) {
  let word = ownedWord(t, p.outWinOff, p.count);
  if (!(word.ownLo || word.ownHi)) {
    return;
  }
  var w = 0u;
  if (p.fromBase == 0u || !(word.ownLo && word.ownHi)) {
    w = dst[word.index]; // prev values, or the half this thread keeps
  }
  for (var h = 0u; h < 2u; h++) {
    let k = word.lo + h;
    if (select(word.ownLo, word.ownHi, h == 1u)) {
      let j = k - p.outWinOff;
      var prev: f32;
      if (p.fromBase != 0u) {
        prev = baseAt(j);
      } else {
        prev = halfOf(w, k);
      }
      w = withHalf(w, k, halfBits(merged(j, prev)));
    }
  }
  dst[word.index] = w;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y * (p.gridX * WG) + gid.x;
  if (WEIGHT_F16) {
    mergeHalfWord(t);
  } else {
    mergeFloatWord(t);
  }
}

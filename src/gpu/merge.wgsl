alias S = f32;  // storage element type; merge.ts swaps this line for `enable f16; alias S = f16;`

// Weight merge: out = prev + s0·(B0·A0) + s1·(B1·A1) + sd·D over one chunk of W's elements.
//   A = LoRA down [rank, in], B = LoRA up [out, rank], D = dense delta (same shape as W).
//   layout 0 ('out-in', Linear / 1x1 Conv): W is [out, in], element (row, col) = (o, i).
//   layout 1 ('in-out', diffusers MatMul export): W is [in, out], element (row, col) = (i, o).
//   In both, ΔW[o, i] = Σ_k B[o, k]·A[k, i].
// One thread per output element, looping over the rank. The merge is bandwidth-bound on W (read W, write W'):
// for rank ≤ ~64 a thread does at most a few hundred FMAs on A/B values that the caches serve (A and B are
// rank·(in+out) elements, tiny next to W), so a shared-memory tiled kernel would only add barriers.
// Sums are kept in f32 even when S is f16: the kernel is memory-bound, so f16 arithmetic would save nothing
// and would lose digits over the rank sum.
// prev is `base` on a chunk's first pass (fromBase = 1), `out` itself on later passes (more than two LoRAs or
// one dense term per pass) and when merging in place.
// base, out and dense are bound as windows starting at a 256-byte aligned offset at or before the chunk's
// first element; `winOff` is that first element's index inside the window (`outWinOff` for out, whose W' may
// start at an element offset: the worker's stacked [θ_pos; θ_neg] buffers). Unused slots are bound to a dummy
// buffer with rank 0 / hasDense 0 and are never read.

struct Params {
  count: u32,        // elements in this chunk
  first: u32,        // global (row-major) index of the chunk's first element
  winOff: u32,       // index of the chunk's first element inside the base/dense windows
  cols: u32,         // row length of W: in for layout 0, out for layout 1
  inOut: u32,        // 0 = out-in, 1 = in-out
  inFeatures: u32,   // row stride of A
  rank0: u32,
  rank1: u32,
  fromBase: u32,
  hasDense: u32,
  gridX: u32,        // workgroups along x; the dispatch is folded into y past maxComputeWorkgroupsPerDimension
  outWinOff: u32,    // index of the chunk's first element inside the out window (out may start at an offset)
  scale0: f32,
  scale1: f32,
  denseScale: f32,
  _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> base: array<S>;
@group(0) @binding(2) var<storage, read_write> dst: array<S>;
@group(0) @binding(3) var<storage, read> down0: array<S>;
@group(0) @binding(4) var<storage, read> up0: array<S>;
@group(0) @binding(5) var<storage, read> down1: array<S>;
@group(0) @binding(6) var<storage, read> up1: array<S>;
@group(0) @binding(7) var<storage, read> dense: array<S>;

const WG: u32 = 256u;

// Σ_k B[o, k]·A[k, i] for one LoRA; 0 when rank is 0.
fn lora0(o: u32, i: u32) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < p.rank0; k++) {
    s += f32(up0[o * p.rank0 + k]) * f32(down0[k * p.inFeatures + i]);
  }
  return s;
}

fn lora1(o: u32, i: u32) -> f32 {
  var s = 0.0;
  for (var k = 0u; k < p.rank1; k++) {
    s += f32(up1[o * p.rank1 + k]) * f32(down1[k * p.inFeatures + i]);
  }
  return s;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let local = gid.y * (p.gridX * WG) + gid.x;
  if (local >= p.count) {
    return;
  }
  let e = p.first + local;
  let row = e / p.cols;
  let col = e - row * p.cols;
  var o = row;
  var i = col;
  if (p.inOut == 1u) {
    o = col;
    i = row;
  }
  let w = p.winOff + local;
  let d = p.outWinOff + local;
  var acc: f32;
  if (p.fromBase != 0u) {
    acc = f32(base[w]);
  } else {
    acc = f32(dst[d]);
  }
  if (p.rank0 > 0u) {
    acc += p.scale0 * lora0(o, i);
  }
  if (p.rank1 > 0u) {
    acc += p.scale1 * lora1(o, i);
  }
  if (p.hasDense != 0u) {
    acc += p.denseScale * f32(dense[w]);
  }
  dst[d] = S(acc);
}

// Element type conversion for the GPU latent loop: dst[dstOffset + i] = scale · src[srcOffset + i], i < count, with
// src and dst each float32 or binary16 (SRC_F16 / DST_F16; half.wgsl, prepended by cast.ts, converts). f32 → f16
// writes a float16 UNet's input from our float32 latents (scale: the scheduler's input scaling); f16 → f32 reads its
// output back into the float32 loop. Offsets count elements, any parity.
// One thread per dst word: one element for f32, two for f16. An f16 dst may start or end mid-word: the thread that
// owns that word keeps the half outside [dstOffset, dstOffset + count) bit for bit (no other thread writes the word).
// The scale multiplies in f32: with scale 1 every value (NaN, ±Inf, subnormal halves) converts as in
// src/lora/float16.ts, except that an f32 → f16 result may be either binary16 neighbour (WGSL's rounding freedom).

override SRC_F16: bool = false;
override DST_F16: bool = false;

struct CastParams {
  count: u32,
  srcOffset: u32,    // index of the first element inside the src window (cast.ts binds windows over the range)
  dstOffset: u32,    // the same inside the dst window
  gridX: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> cp: CastParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

const WG: u32 = 256u;

// cp.scale · the i-th element of the cast.
fn scaled(i: u32) -> f32 {
  let k = cp.srcOffset + i;
  if (SRC_F16) {
    return cp.scale * halfOf(src[k >> 1u], k);
  }
  return cp.scale * bitcast<f32>(src[k]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wg.y * cp.gridX + wg.x) * WG + lid;
  if (!DST_F16) {
    if (t < cp.count) {
      dst[cp.dstOffset + t] = bitcast<u32>(scaled(t));
    }
    return;
  }
  let end = cp.dstOffset + cp.count;
  let word = (cp.dstOffset >> 1u) + t;
  let lo = word * 2u;
  if (lo >= end) {
    return;
  }
  let ownLo = lo >= cp.dstOffset;
  let ownHi = lo + 1u < end;
  var w = 0u;
  if (!(ownLo && ownHi)) {
    w = dst[word]; // the half this thread keeps
  }
  if (ownLo) {
    w = withHalf(w, lo, halfBits(scaled(lo - cp.dstOffset)));
  }
  if (ownHi) {
    w = withHalf(w, lo + 1u, halfBits(scaled(lo + 1u - cp.dstOffset)));
  }
  dst[word] = w;
}

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
  return cp.scale * valueOf(src[wordOf(k, SRC_F16)], k, SRC_F16);
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
  let word = ownedWord(t, cp.dstOffset, cp.count);
  if (!(word.ownLo || word.ownHi)) {
    return;
  }
  var w = 0u;
  if (!(word.ownLo && word.ownHi)) {
    w = dst[word.index]; // the half this thread keeps
  }
  if (word.ownLo) {
    w = withHalf(w, word.lo, halfBits(scaled(word.lo - cp.dstOffset)));
  }
  if (word.ownHi) {
    w = withHalf(w, word.lo + 1u, halfBits(scaled(word.lo + 1u - cp.dstOffset)));
  }
  dst[word.index] = w;
}

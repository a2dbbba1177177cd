// The GPU-resident sampling loop's two kernels (DESIGN decision 6; src/diffusion/schedulers/linear-step.ts):
//   step:   ε_k = (ω + 1)·ε_pos − ω·ε_neg (paper Eq. 10's CFG), then
//           x_{k+1} = Σ_j sampleCoefs[j]·x_{k−j} + Σ_j outputCoefs[j]·ε_{k−j} + noiseCoef·z_k.
// x and ε live in rings of `ring` slots of `count` elements each; x_k and ε_k sit in slot `slot`, x_{k+1} goes to
// slot (slot + 1) % ring, which holds x_{k−ring+1}: each thread reads all its history before it writes, and threads
// touch only their own element, so the ring needs no extra slot.

const WG: u32 = 256u;
const MAX_RING: u32 = 8u;

struct StepParams {
  count: u32,
  posOffset: u32,    // element offset of this image's positive output in `pos`
  negOffset: u32,    // element offset of its negative output in `neg`
  slot: u32,
  ring: u32,
  gridX: u32,
  _pad0: u32,
  _pad1: u32,
  omega: f32,
  noiseCoef: f32,
  _pad2: f32,
  _pad3: f32,
  sampleCoefs: array<vec4<f32>, 2>,
  outputCoefs: array<vec4<f32>, 2>,
}

@group(0) @binding(0) var<uniform> sp: StepParams;
@group(0) @binding(1) var<storage, read> pos: array<f32>;
@group(0) @binding(2) var<storage, read> neg: array<f32>;
@group(0) @binding(3) var<storage, read_write> xs: array<f32>;
@group(0) @binding(4) var<storage, read_write> eps: array<f32>;
@group(0) @binding(5) var<storage, read> noise: array<f32>;

fn coef(a: array<vec4<f32>, 2>, j: u32) -> f32 {
  return a[j / 4u][j % 4u];
}

@compute @workgroup_size(WG)
fn step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.y * sp.gridX + wg.x) * WG + lid;
  if (i >= sp.count) { return; }
  let e = (sp.omega + 1.0) * pos[sp.posOffset + i] - sp.omega * neg[sp.negOffset + i];
  var v = coef(sp.outputCoefs, 0u) * e;
  for (var j = 0u; j < sp.ring; j++) {
    let s = (sp.slot + sp.ring - j) % sp.ring;
    v += coef(sp.sampleCoefs, j) * xs[s * sp.count + i];
    if (j > 0u) { v += coef(sp.outputCoefs, j) * eps[s * sp.count + i]; }
  }
  if (sp.noiseCoef != 0.0) { v += sp.noiseCoef * noise[i]; }
  eps[sp.slot * sp.count + i] = e;
  xs[((sp.slot + 1u) % sp.ring) * sp.count + i] = v;
}

// preview: a low-resolution look at one image mid-sampling, p = mean over factor×factor blocks of a·x + b·ε, per channel,
// with ε = (ω + 1)·ε_pos − ω·ε_neg. With (a, b) the step's x̂₀ coefficients (linear-step.ts) it shows the scheduler's
// x̂₀ estimate; with (1, 0) on the next ring slot, the sample x_{k+1} itself (then pos/neg are never read).
struct PreviewParams {
  channels: u32,
  height: u32,       // of the full image
  width: u32,
  factor: u32,
  xOffset: u32,      // element offset of x in `px` (a ring slot)
  posOffset: u32,
  negOffset: u32,
  gridX: u32,
  omega: f32,
  a: f32,
  b: f32,
  _pad0: f32,
}

@group(0) @binding(0) var<uniform> pp: PreviewParams;
@group(0) @binding(1) var<storage, read> ppos: array<f32>;
@group(0) @binding(2) var<storage, read> pneg: array<f32>;
@group(0) @binding(3) var<storage, read> px: array<f32>;
@group(0) @binding(4) var<storage, read_write> pout: array<f32>;

@compute @workgroup_size(WG)
fn preview(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let o = (wg.y * pp.gridX + wg.x) * WG + lid;
  let ow = pp.width / pp.factor;
  let oh = pp.height / pp.factor;
  if (o >= pp.channels * oh * ow) { return; }
  let c = o / (oh * ow);
  let y = (o / ow) % oh;
  let x = o % ow;
  var sum = 0.0;
  for (var dy = 0u; dy < pp.factor; dy++) {
    for (var dx = 0u; dx < pp.factor; dx++) {
      let i = (c * pp.height + y * pp.factor + dy) * pp.width + x * pp.factor + dx;
      var v = pp.a * px[pp.xOffset + i];
      if (pp.b != 0.0) {
        v += pp.b * ((pp.omega + 1.0) * ppos[pp.posOffset + i] - pp.omega * pneg[pp.negOffset + i]);
      }
      sum += v;
    }
  }
  pout[o] = sum / f32(pp.factor * pp.factor);
}

// Composite graphs shared by the autodiff tests: a two-head attention block with a LoRA on q, and a small UNet-like
// block with a symbolic batch (timestep embedding, Conv, decomposed group norm, SiLU, nearest upsampling, skip
// Concat, a Slice chunk). Test support only.
import type { GraphBuilder } from '../builder.ts';
import type { CaseSpec, Kind } from './gradcheck.ts';

const [T, D, H] = [3, 4, 2];

export function attention(g: GraphBuilder, ins: Record<string, string>, k: Kind): string {
  const d = D / H;
  const ln = g.op('LayerNormalization', [ins.x, ins.gamma, ins.beta], { epsilon: 1e-5 });
  const heads = (v: string) => g.op('Transpose', [g.op('Reshape', [v, g.int64s([0, 0, H, d])])], { perm: [0, 2, 1, 3] });
  const loraQ = g.op('MatMul', [g.op('MatMul', [ln, g.op('Transpose', [ins.A], { perm: [1, 0] })]), g.op('Transpose', [ins.B], { perm: [1, 0] })]);
  const q = heads(g.op('Add', [g.op('MatMul', [ln, ins.wq]), g.op('Mul', [loraQ, k.scalar(0.5)])]));
  const kk = heads(g.op('MatMul', [ln, ins.wk]));
  const v = heads(g.op('MatMul', [ln, ins.wv]));
  const scores = g.op('Div', [g.op('MatMul', [q, g.op('Transpose', [kk], { perm: [0, 1, 3, 2] })]), k.scalar(Math.sqrt(d))]);
  const attn = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
  const merged = g.op('Reshape', [g.op('Transpose', [attn], { perm: [0, 2, 1, 3] }), g.int64s([0, 0, D])]);
  return g.op('Add', [g.op('MatMul', [merged, ins.wo]), ins.x]);
}

export const attentionSpec = (extra: Partial<CaseSpec> = {}): CaseSpec => ({
  inputs: {
    x: { dims: [2, T, D] }, gamma: { dims: [D] }, beta: { dims: [D] },
    wq: { dims: [D, D] }, wk: { dims: [D, D] }, wv: { dims: [D, D] }, wo: { dims: [D, D] },
    A: { dims: [2, D] }, B: { dims: [D, 2] },
  },
  build: attention,
  maxChecks: 12,
  ...extra,
});

/** UNet-like block; x [N, 2, 4, 4] with N symbolic, t [N] timesteps. */
export function unetBlock(g: GraphBuilder, ins: Record<string, string>, k: Kind): string {
  const freqs = k.tensor([2], (() => { let i = 0; return () => [1, 0.3][i++]; })());
  const args = g.op('Mul', [g.op('Unsqueeze', [ins.t, g.int64s([1])]), freqs]);
  const emb = g.op('Concat', [g.op('Sin', [args]), g.op('Cos', [args])], { axis: 1 }); // [N, 4]
  const temb = g.op('Unsqueeze', [g.op('MatMul', [emb, ins.wt]), g.int64s([2, 3])]); // [N, 2, 1, 1]
  const h = g.op('Add', [g.op('Conv', [ins.x, ins.w1, ins.b1], { pads: [1, 1, 1, 1] }), temb]);
  const grouped = g.op('Reshape', [h, g.int64s([0, 2, -1])]);
  const mean = g.op('ReduceMean', [grouped], { axes: [2] });
  const centered = g.op('Sub', [grouped, mean]);
  const variance = g.op('ReduceMean', [g.op('Mul', [centered, centered])], { axes: [2] });
  const normed = g.op('Reshape', [g.op('Div', [centered, g.op('Sqrt', [g.op('Add', [variance, k.scalar(1e-5)])])]), g.op('Shape', [h])]);
  const silu = g.op('Mul', [normed, g.op('Sigmoid', [normed])]);
  const scales = g.constant(Float32Array.from([1, 1, 2, 2]));
  const up = g.op('Resize', [silu, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  const skip = g.op('Resize', [ins.x, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
  const cat = g.op('Concat', [up, skip], { axis: 1 }); // [N, 4, 8, 8]
  const out = g.op('Conv', [cat, ins.w2], { strides: [2, 2], pads: [0, 0, 1, 1] }); // [N, 4, 4, 4]
  const [first, second] = [g.op('Slice', [out, g.int64s([0]), g.int64s([2]), g.int64s([1])]), g.op('Slice', [out, g.int64s([2]), g.int64s([4]), g.int64s([1])])];
  return g.op('Mul', [first, g.op('Tanh', [second])]); // a GEGLU-like chunk
}

export const unetSpec: CaseSpec = {
  inputs: {
    x: { dims: [1, 2, 4, 4], shape: ['n', 2, 4, 4] }, t: { dims: [1], shape: ['n'], values: (r) => 3 * r() },
    wt: { dims: [4, 2] }, w1: { dims: [2, 2, 3, 3] }, b1: { dims: [2] }, w2: { dims: [4, 4, 3, 3] },
  },
  build: unetBlock,
  dtype: 'float32', fdDtype: 'float32', step: 1e-2, maxChecks: 10,
};


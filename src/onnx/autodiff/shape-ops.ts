// Gradient rules for ops that move values without arithmetic: Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
// Expand, Concat, Split, Slice, Gather. Sizes come from Shape ops at run time, so symbolic dims work.
import { attrInt, attrInts, attrString } from './attributes.ts';
import { dy0, type GradRule } from './rule.ts';
import type { Emitter } from './emitter.ts';
import type { Dim } from './shapes.ts';

const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);
const reshapeBack: GradRule = (a) => [a.e.op('Reshape', [dy0(a), a.e.shape(a.x[0])])];

const transpose: GradRule = (a) => {
  const rank = a.e.rank(a.x[0]);
  const perm = attrInts(a.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inverse = perm.map((_, i) => perm.indexOf(i));
  return [a.e.transpose(dy0(a), inverse)];
};

const concat: GradRule = (a) => {
  const { e, x } = a;
  const axis = normAxis(attrInt(a.node, 'axis', 0), e.rank(x[0]));
  const parts = x.map((xi) => e.sizes(xi, [axis]));
  const allConst = parts.map((p) => e.constValues(p));
  const split = allConst.every((c) => c) ? e.int64s(allConst.map((c) => c![0])) : e.op('Concat', parts, { axis: 0 });
  return e.ops('Split', [dy0(a), split], { axis }, x.length);
};

const split: GradRule = (a) => {
  const { e } = a;
  const axis = normAxis(attrInt(a.node, 'axis', 0), e.rank(a.x[0]));
  const pieces = a.y.map((yi, i) => a.dy[i] ?? e.zerosLike(yi));
  return [e.op('Concat', pieces, { axis })];
};

/** Slice with positive steps: scatter dy back into zeros by padding (stride > 1 interleaves zeros first). */
const slice: GradRule = (a) => {
  const { e, x, node } = a;
  const data = x[0];
  const rank = e.rank(data);
  const axes = (x[3] ? e.constValues(x[3]) : Array.from({ length: rank }, (_, i) => i))?.map((v) => normAxis(v, rank));
  const steps = x[4] ? e.constValues(x[4]) : undefined;
  if (!axes) return e.fail(`Slice ${node.name}: axes must be constant for its gradient`);
  if (x[4] && !steps) e.fail(`Slice ${node.name}: steps must be constant for its gradient`);
  if (steps?.some((s) => s <= 0)) e.fail(`Slice ${node.name}: negative steps have no gradient rule`);
  let g = dy0(a);
  const zero = e.int64s([0]);
  // Clamp starts as Slice does: s < 0 → s + dim, then into [0, dim].
  const dims = e.sizes(data, axes);
  const startsT = e.elemType(x[1]) === 7 ? x[1] : e.op('Cast', [x[1]], { to: 7 });
  const wrapped = e.op('Where', [e.op('Less', [startsT, zero]), e.op('Add', [startsT, dims]), startsT]);
  const starts = e.op('Min', [e.op('Max', [wrapped, zero]), dims]);
  const strided = (steps ?? []).map((s, j) => [s, axes[j]] as const).filter(([s]) => s > 1);
  for (const [step, axis] of strided) {
    // [.., L, ..] → [.., L, 1, ..] → pad to [.., L, step, ..] → [.., L·step, ..]; Pad below trims the excess.
    const r = e.rank(g);
    const expanded = e.unsqueeze(g, [axis + 1]);
    const pads = Array(2 * (r + 1)).fill(0);
    pads[r + 1 + axis + 1] = step - 1;
    const padded = e.op('Pad', [expanded, e.int64s(pads)]);
    const shape = e.op('Concat', [e.op('Slice', [e.shape(g), e.int64s([0]), e.int64s([axis])]), e.int64s([-1]), e.op('Slice', [e.shape(g), e.int64s([axis + 1]), e.int64s([r])])], { axis: 0 });
    g = e.op('Reshape', [padded, shape]);
  }
  // pads: begin = clamped start, end = dim − start − (length of g along the axis); negative end pads trim.
  const lengths = e.op('Gather', [e.shape(g), e.int64s(axes)], { axis: 0 });
  const ends = e.op('Sub', [e.op('Sub', [dims, starts]), lengths]);
  const full = (part: string) => e.op('Concat', Array.from({ length: rank }, (_, i) =>
    axes.includes(i) ? e.op('Gather', [part, e.int64s([axes.indexOf(i)])], { axis: 0 }) : zero), { axis: 0 });
  const pads = e.op('Concat', [full(starts), full(ends)], { axis: 0 });
  return [e.op('Pad', [g, pads])];
};

/** Gather's gradient is a scatter-add of dy into zeros (indices may repeat): ScatterND along a leading axis. */
const gather: GradRule = (a) => {
  const { e, x, node } = a;
  const [data, indices] = x;
  const rank = e.rank(data);
  const axis = normAxis(attrInt(node, 'axis', 0), rank);
  const iRank = e.rank(indices);
  const g = dy0(a);
  // Move the gathered axis to the front in data, and the index dims to the front in dy.
  const dataPerm = [axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis)];
  const gPerm = [...Array.from({ length: iRank }, (_, i) => axis + i), ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: rank - axis - 1 }, (_, i) => axis + iRank + i)];
  const gT = e.transpose(g, gPerm);
  const dataShapeT = e.op('Gather', [e.shape(data), e.int64s(dataPerm)], { axis: 0 });
  const zeros = e.zerosOfShape(dataShapeT, g);
  const dimAxis = e.sizes(data, [axis]);
  const idx64 = e.elemType(indices) === 7 ? indices : e.op('Cast', [indices], { to: 7 });
  const wrapped = e.op('Reshape', [e.op('Where', [e.op('Less', [idx64, e.int64s([0])]), e.op('Add', [idx64, dimAxis]), idx64]), e.shape(indices)]);
  const scattered = e.op('ScatterND', [zeros, e.unsqueeze(wrapped, [iRank]), gT], { reduction: needsAdd(e, indices, e.dims(data)[axis]) ? 'add' : undefined });
  return [e.transpose(scattered, dataPerm.map((_, i) => dataPerm.indexOf(i))), null];
};

/** Constant-mode Pad is adjoint to padding by the negated pads (positive pads become crops and vice versa). */
const pad: GradRule = (a) => {
  const { e, x, node } = a;
  const mode = attrString(node, 'mode', 'constant');
  if (mode !== 'constant') e.fail(`Pad mode "${mode}" has no gradient rule (constant only)`);
  const pads = attrInts(node, 'pads');
  const negated = pads ? e.int64s(pads.map((p) => -p)) : e.op('Neg', [x[1]]);
  return [e.op('Pad', x[3] ? [dy0(a), negated, '', x[3]] : [dy0(a), negated]), null, null, null];
};

/** Tile: dy [r0·d0, r1·d1, ...] → [r0, d0, r1, d1, ...] → sum over the r axes. */
const tile: GradRule = (a) => {
  const { e, x } = a;
  const repeats = e.constValues(x[1]);
  if (!repeats) return e.fail('Tile needs constant repeats for its gradient');
  const parts = repeats.flatMap((r, i) => [e.int64s([r]), e.sizes(x[0], [i])]);
  const blocks = e.op('Reshape', [dy0(a), e.op('Concat', parts, { axis: 0 })]);
  return [e.reduce('ReduceSum', blocks, repeats.map((_, i) => 2 * i), false), null];
};

/** Whether repeated indices need ScatterND's reduction='add' (opset 16+); plain ScatterND suffices for unique ones. */
function needsAdd(e: Emitter, indices: string, dim: Dim): boolean {
  const values = e.constValues(indices);
  const unique = values && typeof dim === 'number' && new Set(values.map((v) => (v < 0 ? v + dim : v))).size === values.length;
  if (unique) return false;
  if (e.opset < 16) e.fail('Gather with repeated or run-time indices needs opset 16 (ScatterND reduction) for its gradient');
  return true;
}

export const shapeRules: Record<string, GradRule> = {
  Reshape: (a) => [...reshapeBack(a), null],
  Flatten: reshapeBack,
  Squeeze: (a) => [...reshapeBack(a), null],
  Unsqueeze: (a) => [...reshapeBack(a), null],
  Transpose: transpose,
  Expand: (a) => [a.e.unbroadcast(dy0(a), a.x[0]), null],
  Concat: concat,
  Split: split,
  Slice: slice,
  Gather: gather,
  Pad: pad,
  Tile: tile,
};

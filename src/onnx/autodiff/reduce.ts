// Gradient rules for reductions along axes: ReduceSum, ReduceMean (broadcast dy back over the reduced axes) and
// Softmax / LogSoftmax (opset 13 semantics: one axis, default −1).
//   Softmax:    dx = y ⊙ (dy − Σ_axis dy ⊙ y)
//   LogSoftmax: dx = dy − exp(y) ⊙ Σ_axis dy
import { attrInt, attrInts } from './attributes.ts';
import type { Emitter } from './emitter.ts';
import { dy0, type GradRule, type RuleArgs } from './rule.ts';

/** The reduced axes (normalised), or null when the node is a no-op (empty axes with noop_with_empty_axes). */
function reducedAxes(a: RuleArgs): number[] | null {
  const { e, node } = a;
  const rank = e.rank(a.x[0]);
  const axes = attrInts(node, 'axes') ?? (a.x[1] ? e.constValues(a.x[1]) : undefined);
  if (a.x[1] && !axes) e.fail(`${node.opType} with run-time axes has no gradient rule`);
  if (!axes || axes.length === 0) return attrInt(node, 'noop_with_empty_axes', 0) ? null : Array.from({ length: rank }, (_, i) => i);
  return axes.map((v) => (v < 0 ? v + rank : v)).sort((p, q) => p - q);
}

function spread(e: Emitter, g: string, x: string, axes: number[], keepdims: boolean): string {
  const kept = keepdims ? g : e.unsqueeze(g, axes);
  return e.op('Expand', [kept, e.shape(x)]);
}

const reduceSum: GradRule = (a) => {
  const axes = reducedAxes(a);
  if (!axes) return [dy0(a), null];
  return [spread(a.e, dy0(a), a.x[0], axes, attrInt(a.node, 'keepdims', 1) === 1), null];
};

const reduceMean: GradRule = (a) => {
  const { e, x } = a;
  const axes = reducedAxes(a);
  if (!axes) return [dy0(a), null];
  const g = spread(e, dy0(a), x[0], axes, attrInt(a.node, 'keepdims', 1) === 1);
  const dims = e.dims(x[0]);
  const count = axes.every((ax) => typeof dims[ax] === 'number')
    ? e.scalar(axes.reduce((p, ax) => p * (dims[ax] as number), 1), g)
    : e.castLike(e.op('ReduceProd', [e.sizes(x[0], axes)], { keepdims: 0 }), g);
  return [e.op('Div', [g, count]), null];
};

/** ReduceMax/ReduceMin: dy goes to the elements equal to the result (each of them on ties). */
const reduceExtreme: GradRule = (a) => {
  const { e, x, y } = a;
  const axes = reducedAxes(a);
  if (!axes) return [dy0(a), null];
  const keep = attrInt(a.node, 'keepdims', 1) === 1;
  const g = spread(e, dy0(a), x[0], axes, keep);
  const winner = e.op('Equal', [x[0], keep ? y[0] : e.unsqueeze(y[0], axes)]);
  return [e.op('Where', [winner, g, e.scalar(0, g)]), null];
};

const softmax: GradRule = (a) => {
  const { e, y } = a;
  const g = dy0(a);
  const axis = attrInt(a.node, 'axis', -1);
  const rank = e.rank(y[0]);
  const ax = axis < 0 ? axis + rank : axis;
  const inner = e.reduce('ReduceSum', e.op('Mul', [g, y[0]]), [ax], true);
  return [e.op('Mul', [y[0], e.op('Sub', [g, inner])])];
};

const logSoftmax: GradRule = (a) => {
  const { e, y } = a;
  const g = dy0(a);
  const rank = e.rank(y[0]);
  const axis = attrInt(a.node, 'axis', -1);
  const total = e.reduce('ReduceSum', g, [axis < 0 ? axis + rank : axis], true);
  return [e.op('Sub', [g, e.op('Mul', [e.op('Exp', [y[0]]), total])])];
};

export const reduceRules: Record<string, GradRule> = {
  ReduceSum: reduceSum,
  ReduceMean: reduceMean,
  ReduceMax: reduceExtreme,
  ReduceMin: reduceExtreme,
  Softmax: softmax,
  LogSoftmax: logSoftmax,
};

// Gradient rules for LayerNormalization, InstanceNormalization and GroupNormalization. All three normalise x over
// some axes (x̂ = (x − μ)·r, r = 1/√(σ² + ε)) and then apply an affine map, so they share one backward:
//   dx = r · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂))      (means over the normalised axes)
// μ and r are recomputed in the gradient graph with ReduceMean rather than read from the optional Mean/InvStdDev
// outputs, which not every execution provider produces.
import { int } from '../proto.ts';
import { attrFloat, attrInt } from './attributes.ts';
import type { Emitter } from './emitter.ts';
import { dy0, type GradRule, type RuleArgs } from './rule.ts';

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** x̂ and a function mapping dx̂ to dx, for normalisation of x over `axes`. */
function normalize(e: Emitter, x: string, axes: number[], eps: number) {
  const mean = e.reduce('ReduceMean', x, axes, true);
  const centered = e.op('Sub', [x, mean]);
  const variance = e.reduce('ReduceMean', e.op('Mul', [centered, centered]), axes, true);
  const rstd = e.op('Reciprocal', [e.op('Sqrt', [e.op('Add', [variance, e.scalar(eps, x)])])]);
  const xhat = e.op('Mul', [centered, rstd]);
  const backward = (dxhat: string) => {
    const m1 = e.reduce('ReduceMean', dxhat, axes, true);
    const m2 = e.reduce('ReduceMean', e.op('Mul', [dxhat, xhat]), axes, true);
    return e.op('Mul', [rstd, e.op('Sub', [e.op('Sub', [dxhat, m1]), e.op('Mul', [xhat, m2])])]);
  };
  return { xhat, backward };
}

function onlyFirstOutput(a: RuleArgs) {
  if (a.dy.slice(1).some((g) => g)) a.e.fail(`${a.node.opType}: gradients through its Mean/InvStdDev outputs are not supported`);
}

const layerNorm: GradRule = (a) => {
  const { e, x } = a;
  onlyFirstOutput(a);
  const g = dy0(a);
  const rank = e.rank(x[0]);
  const axis = attrInt(a.node, 'axis', -1);
  const { xhat, backward } = normalize(e, x[0], range(axis < 0 ? axis + rank : axis, rank), attrFloat(a.node, 'epsilon', 1e-5));
  return [
    a.needs[0] ? backward(e.op('Mul', [g, x[1]])) : null,
    a.needs[1] ? e.unbroadcast(e.op('Mul', [g, xhat]), x[1]) : null,
    x[2] && a.needs[2] ? e.unbroadcast(g, x[2]) : null,
  ];
};

const instanceNorm: GradRule = (a) => {
  const { e, x } = a;
  const g = dy0(a);
  const rank = e.rank(x[0]);
  const spatial = range(2, rank);
  const perChannel = (v: string) => e.unsqueeze(v, range(1, rank - 1)); // [C] → [C, 1, ...]
  const { xhat, backward } = normalize(e, x[0], spatial, attrFloat(a.node, 'epsilon', 1e-5));
  return [
    a.needs[0] ? backward(e.op('Mul', [g, perChannel(x[1])])) : null,
    a.needs[1] ? e.reduce('ReduceSum', e.op('Mul', [g, xhat]), [0, ...spatial], false) : null,
    a.needs[2] ? e.reduce('ReduceSum', g, [0, ...spatial], false) : null,
  ];
};

// ONNX GroupNormalization: opset 18–20 take scale/bias per group [G]; opset 21 per channel [C].
const groupNorm: GradRule = (a) => {
  const { e, x, node } = a;
  const g = dy0(a);
  const rank = e.rank(x[0]);
  const groups = int((node.attribute ?? []).find((t) => t.name === 'num_groups')?.i);
  if (!groups) e.fail('GroupNormalization without num_groups');
  const grouped = e.int64s([0, groups, -1]);
  const toGroups = (v: string) => e.op('Reshape', [v, grouped]);
  const { xhat, backward } = normalize(e, toGroups(x[0]), [2], attrFloat(node, 'epsilon', 1e-5));
  const back = (v: string) => e.op('Reshape', [v, e.shape(x[0])]);
  if (e.opset >= 21) {
    const spatial = range(2, rank);
    const perChannel = (v: string) => e.unsqueeze(v, range(1, rank - 1));
    return [
      a.needs[0] ? back(backward(toGroups(e.op('Mul', [g, perChannel(x[1])])))) : null,
      a.needs[1] ? e.reduce('ReduceSum', e.op('Mul', [g, back(xhat)]), [0, ...spatial], false) : null,
      a.needs[2] ? e.reduce('ReduceSum', g, [0, ...spatial], false) : null,
    ];
  }
  const gg = toGroups(g);
  return [
    a.needs[0] ? back(backward(e.op('Mul', [gg, e.unsqueeze(x[1], [1])]))) : null,
    a.needs[1] ? e.reduce('ReduceSum', e.op('Mul', [gg, xhat]), [0, 2], false) : null,
    a.needs[2] ? e.reduce('ReduceSum', gg, [0, 2], false) : null,
  ];
};

export const normalizationRules: Record<string, GradRule> = {
  LayerNormalization: layerNorm,
  InstanceNormalization: instanceNorm,
  GroupNormalization: groupNorm,
};

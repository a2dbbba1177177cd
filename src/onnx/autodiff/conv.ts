// Gradient rule for Conv (any spatial rank, group, strides, pads, dilations).
//  - input:  dX = ConvTranspose(dY, W) with the same group/strides/pads/dilations; output_padding recovers the rows a
//            strided conv dropped (exact when X's spatial size is static, else the maximum then a Slice to Shape(X)).
//  - weight: dW[m, c, k] = Σ_n Σ_o dY[n, m, o] · X[n, c, o·s + k·d − p], itself a Conv with batch and channel swapped
//            (strides and dilations exchange roles), grouped by folding the group index into the new channel axis.
//  - bias:   dB = Σ over batch and space of dY.
import { attrInt, attrInts, attrString } from './attributes.ts';
import type { Emitter } from './emitter.ts';
import { dy0, type GradRule } from './rule.ts';

interface ConvParams {
  sp: number;
  group: number;
  strides: number[];
  dilations: number[];
  pads: number[];
}

function params(e: Emitter, a: Parameters<GradRule>[0]): ConvParams {
  const { node, x } = a;
  const sp = e.rank(x[1]) - 2;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') e.fail(`Conv with auto_pad=${autoPad} has no gradient rule (give explicit pads)`);
  return {
    sp,
    group: attrInt(node, 'group', 1),
    strides: attrInts(node, 'strides') ?? Array(sp).fill(1),
    dilations: attrInts(node, 'dilations') ?? Array(sp).fill(1),
    pads: autoPad === 'VALID' ? Array(2 * sp).fill(0) : (attrInts(node, 'pads') ?? Array(2 * sp).fill(0)),
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

function inputGrad(e: Emitter, g: string, x: string, w: string, p: ConvParams): string {
  const xd = e.dims(x);
  const kd = e.dims(w).slice(2);
  const exact = range(0, p.sp).map((i) => {
    const [d, k] = [xd[i + 2], kd[i]];
    if (typeof d !== 'number' || typeof k !== 'number') return null;
    return (d + p.pads[i] + p.pads[i + p.sp] - ((k - 1) * p.dilations[i] + 1)) % p.strides[i];
  });
  const known = exact.every((v) => v !== null);
  const outputPadding = known ? (exact as number[]) : p.strides.map((s) => s - 1);
  const dx = e.op('ConvTranspose', [g, w], {
    group: p.group, strides: p.strides, dilations: p.dilations, pads: p.pads,
    output_padding: outputPadding.some((v) => v) ? outputPadding : undefined,
  });
  if (known || p.strides.every((s) => s === 1)) return dx;
  const axes = range(2, 2 + p.sp);
  return e.op('Slice', [dx, e.int64s(axes.map(() => 0)), e.sizes(x, axes), e.int64s(axes)]);
}

function weightGrad(e: Emitter, g: string, x: string, w: string, p: ConvParams): string {
  const rank = p.sp + 2;
  const spatial = range(2, rank);
  const swap = [1, 0, ...spatial];
  let input: string;
  if (p.group === 1) {
    input = e.transpose(x, swap); // [C, N, S...]
  } else {
    // X [N, C, S] → [N, G, C/G, S] → [C/G, G, N, S] → [C/G, G·N, S]: channel j·N + n of group j holds X[n, j·C/G + c].
    const split = e.op('Concat', [e.sizes(x, [0]), e.int64s([p.group, -1]), e.op('Slice', [e.shape(x), e.int64s([2]), e.int64s([rank])])], { axis: 0 });
    const grouped = e.transpose(e.op('Reshape', [x, split]), [2, 1, 0, ...range(3, rank + 1)]);
    const merged = e.op('Concat', [e.sizes(w, [1]), e.int64s([-1]), e.op('Slice', [e.shape(x), e.int64s([2]), e.int64s([rank])])], { axis: 0 });
    input = e.op('Reshape', [grouped, merged]);
  }
  const kernel = e.transpose(g, swap); // [M, N, O...]
  const corr = e.op('Conv', [input, kernel], {
    group: p.group, strides: p.dilations, dilations: p.strides, pads: p.pads,
  }); // [C/G, M, K'...], K' ≥ K when the stride dropped trailing rows
  const dw = e.transpose(corr, swap);
  const wd = e.dims(w);
  const cd = e.dims(dw);
  if (spatial.every((i) => typeof wd[i] === 'number' && wd[i] === cd[i])) return dw;
  return e.op('Slice', [dw, e.int64s(spatial.map(() => 0)), e.sizes(w, spatial), e.int64s(spatial)]);
}

const conv: GradRule = (a) => {
  const { e, x } = a;
  const g = dy0(a);
  const p = params(e, a);
  return [
    a.needs[0] ? inputGrad(e, g, x[0], x[1], p) : null,
    a.needs[1] ? weightGrad(e, g, x[0], x[1], p) : null,
    x[2] && a.needs[2] ? e.reduce('ReduceSum', g, [0, ...range(2, p.sp + 2)], false) : null,
  ];
};

export const convRules: Record<string, GradRule> = { Conv: conv };

// Gradient rule for Resize in nearest mode with integer upsampling factors (the UNet's 2× "nearest" upsample).
// Each input pixel is copied to an s×s block, so its gradient is the block sum: reshape dy [.., H·s, ..] to
// [.., H, s, ..] and ReduceSum the s axes. The coordinate/rounding modes are checked to really map output y to
// input ⌊y/s⌋ (asymmetric+floor and every half_pixel variant do; others are refused rather than guessed).
import { attrInt, attrInts, attrString } from './attributes.ts';
import type { Emitter } from './emitter.ts';
import { dy0, type GradRule } from './rule.ts';

function sourceIndex(y: number, s: number, inSize: number, coord: string, rounding: string): number {
  const outSize = inSize * s;
  const xf =
    coord === 'asymmetric' ? y / s
    : coord === 'align_corners' ? (outSize === 1 ? 0 : (y * (inSize - 1)) / (outSize - 1))
    : coord === 'half_pixel' || coord === 'pytorch_half_pixel' || coord === 'half_pixel_symmetric' ? (y + 0.5) / s - 0.5
    : NaN;
  const frac = xf - Math.floor(xf);
  const r =
    rounding === 'floor' ? Math.floor(xf)
    : rounding === 'ceil' ? Math.ceil(xf)
    : rounding === 'round_prefer_ceil' ? (frac === 0.5 ? Math.ceil(xf) : Math.round(xf))
    : frac === 0.5 ? Math.floor(xf) : Math.round(xf);
  return Math.min(Math.max(r, 0), inSize - 1);
}

function isBlockCopy(s: number, coord: string, rounding: string): boolean {
  const inSize = 5;
  for (let y = 0; y < inSize * s; y++) if (sourceIndex(y, s, inSize, coord, rounding) !== Math.floor(y / s)) return false;
  return true;
}

function scalesOf(e: Emitter, a: Parameters<GradRule>[0]): number[] {
  const { x, node } = a;
  const rank = e.rank(x[0]);
  const axes = (attrInts(node, 'axes') ?? Array.from({ length: rank }, (_, i) => i)).map((v) => (v < 0 ? v + rank : v));
  const full = Array(rank).fill(1);
  const scales = x[2] ? e.constValues(x[2]) : undefined;
  const sizes = x[3] ? e.constValues(x[3]) : undefined;
  if (scales?.length) axes.forEach((ax, i) => (full[ax] = scales[i]));
  else if (sizes?.length) {
    const dims = e.dims(x[0]);
    axes.forEach((ax, i) => {
      const d = dims[ax];
      if (typeof d !== 'number') e.fail('Resize by sizes needs a static input shape for its gradient (use scales)');
      full[ax] = sizes[i] / d;
    });
  } else e.fail('Resize needs constant scales or sizes for its gradient');
  if (!full.every((s) => Number.isInteger(s) && s >= 1)) e.fail(`Resize gradient supports integer upsampling only (scales ${full})`);
  return full;
}

const resize: GradRule = (a) => {
  const { e, x, node } = a;
  const mode = attrString(node, 'mode', 'nearest');
  const coord = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  const rounding = attrString(node, 'nearest_mode', 'round_prefer_floor');
  if (mode !== 'nearest') e.fail(`Resize mode "${mode}" has no gradient rule (nearest only)`);
  if (attrInt(node, 'antialias', 0)) e.fail('Resize with antialias has no gradient rule');
  const scales = scalesOf(e, a);
  for (const s of scales) {
    if (s > 1 && !isBlockCopy(s, coord, rounding)) e.fail(`Resize nearest with ${coord}/${rounding} at scale ${s} is not a block copy; no gradient rule`);
  }
  const parts: string[] = [];
  const summed: number[] = [];
  scales.forEach((s, i) => {
    parts.push(e.sizes(x[0], [i]));
    if (s > 1) {
      parts.push(e.int64s([s]));
      summed.push(parts.length - 1);
    }
  });
  if (!summed.length) return [dy0(a)];
  const blocks = e.op('Reshape', [dy0(a), e.op('Concat', parts, { axis: 0 })]);
  return [e.reduce('ReduceSum', blocks, summed, false), null, null, null];
};

export const resizeRules: Record<string, GradRule> = { Resize: resize };

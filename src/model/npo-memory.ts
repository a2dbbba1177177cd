// Weights an NPO model keeps resident, per case, from a UNet's parameter list (unet-params.ts): what the bench:sd15
// table prints and what a "will it fit" check compares with the adapter. Weights only: ORT's activations, the text
// encoder and the VAE come on top. DESIGN §2: θ_pos = θ + η, θ_neg = θ + α·η + β·δ.
//   (a) plain CFG: both branches use θ_pos (η merged into θ once, at load).
//   (b) NPO, α = 1, LoRA δ: θ_neg = θ_pos + β·δ differs from θ_pos only at δ's sites; those weights are stacked
//       [θ_pos; θ_neg] (src/onnx/passes/stack-weight-sets.ts), the rest is shared; δ's factors stay for a β change.
//   (b2) NPO, α ≠ 1, LoRA η on the same sites as δ: θ_neg = θ_pos + (α − 1)·η + β·δ still differs only there; η's
//       factors stay too (for comparison with (c): a low-rank η costs almost nothing).
//   (c) NPO, α ≠ 1, dense η (a full fine-tune such as DPO-SD1.5): θ_pos and θ_neg differ at every weight, so both are
//       resident everywhere; an α change re-merges θ_neg from either
//       (c1) θ_pos and η: θ_neg = θ_pos + (α − 1)·η + β·δ (one extra copy), or
//       (c2) θ and η:     θ_neg = θ + α·η + β·δ (two extra copies; θ_pos stays merged).
import { numel, type UnetParam } from './unet-params.ts';

export type NpoCase = 'a' | 'b' | 'b2' | 'c1' | 'c2';

export interface ResidentPart {
  what: string;
  params: number;
}

export interface ResidentWeights {
  case: NpoCase;
  title: string;
  parts: ResidentPart[];
  params: number;
}

/** δ's sites: the Linear weights of every attention's to_q/to_k/to_v/to_out.0, as the released NPO LoRA. */
export const deltaSites = (params: UnetParam[]) => params.filter((p) => p.role === 'attn-proj');

/** Parameters of a rank-r LoRA on the given [out, in] sites: down [r, in] + up [out, r] each. */
export const loraParams = (sites: UnetParam[], rank: number) => sites.reduce((a, p) => a + rank * (p.shape[0] + p.shape[1]), 0);

export function residentWeights(params: UnetParam[], npoCase: NpoCase, deltaRank = 8): ResidentWeights {
  const all = params.reduce((a, p) => a + numel(p.shape), 0);
  const sites = deltaSites(params);
  const atSites = sites.reduce((a, p) => a + numel(p.shape), 0);
  const delta = { what: `δ r${deltaRank}`, params: loraParams(sites, deltaRank) };
  const table: Record<NpoCase, { title: string; parts: ResidentPart[] }> = {
    a: { title: 'plain CFG', parts: [{ what: 'θ_pos', params: all }] },
    b: {
      title: `NPO α = 1, rank-${deltaRank} LoRA δ`,
      parts: [{ what: 'θ_pos', params: all }, { what: 'θ_neg@δ sites', params: atSites }, delta],
    },
    b2: {
      title: `NPO α ≠ 1, rank-${deltaRank} LoRA η and δ`,
      parts: [{ what: 'θ_pos', params: all }, { what: 'θ_neg@δ sites', params: atSites }, { ...delta, what: delta.what.replace('δ', 'η') }, delta],
    },
    c1: {
      title: 'NPO α ≠ 1, dense η, re-merge from θ_pos + η',
      parts: [{ what: 'θ_pos', params: all }, { what: 'θ_neg', params: all }, { what: 'η', params: all }, delta],
    },
    c2: {
      title: 'NPO α ≠ 1, dense η, re-merge from θ + η',
      parts: [{ what: 'θ_pos', params: all }, { what: 'θ_neg', params: all }, { what: 'θ', params: all }, { what: 'η', params: all }, delta],
    },
  };
  const { title, parts } = table[npoCase];
  return { case: npoCase, title, parts, params: parts.reduce((a, p) => a + p.params, 0) };
}

/** Rows → aligned text columns (first left-aligned, the rest right-aligned), for the bench tables. */
export function textTable(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

/** The bench:sd15 / bench:sdxl table: resident weights per NPO case, parameters and GB in fp16 / fp32. */
export function residentTable(params: UnetParam[], deltaRank = 8): string {
  const total = params.reduce((a, p) => a + numel(p.shape), 0);
  const gb = (bytes: number) => (bytes / 1e9).toFixed(3);
  const rows = [['case', 'resident weights', 'parameters', 'fp16 GB', 'fp32 GB', '× (a)']];
  for (const c of ['a', 'b', 'b2', 'c1', 'c2'] as const) {
    const r = residentWeights(params, c, deltaRank);
    rows.push([`(${c}) ${r.title}`, r.parts.map((p) => p.what).join(' + '), r.params.toLocaleString('en-US'), gb(2 * r.params), gb(4 * r.params), (r.params / total).toFixed(2)]);
  }
  return textTable(rows);
}

// The α×β sweep (paper Figure 10) as data: the axis values a person types, the grid of cells in generation order,
// and the best cell by score. The app streams cells into it; the maths of each image is the worker's.

export type SweepAxis = 'alpha' | 'beta' | 'omega';

/** The values a sweep (and the page's α and β sliders) accept. α and β reach 2, past the defaults (α 1.5, β 0.5: the
 *  embedded model's manifest) and along the map's ridge, where α grows with β (README, "Choosing α and β"). */
export const AXIS_RANGES: Record<SweepAxis, [number, number]> = { alpha: [0, 2], beta: [0, 2], omega: [0, 30] };

export class SweepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepError';
  }
}

/** "0, 0.5, 1" → [0, 0.5, 1]; each value within the axis's range; 1 to 8 distinct values. */
export function parseAxisValues(text: string, axis: SweepAxis): number[] {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  if (parts.length === 0) throw new SweepError(`${axis}: give at least one value`);
  if (parts.length > 8) throw new SweepError(`${axis}: at most 8 values (got ${parts.length})`);
  const [lo, hi] = AXIS_RANGES[axis];
  const values = parts.map((p) => {
    const v = Number(p);
    if (!Number.isFinite(v)) throw new SweepError(`${axis}: ${JSON.stringify(p)} is not a number`);
    if (v < lo || v > hi) throw new SweepError(`${axis}: ${v} is outside [${lo}, ${hi}]`);
    return v;
  });
  if (new Set(values).size !== values.length) throw new SweepError(`${axis}: values repeat`);
  return values;
}

export interface SweepCellSpec { row: number; column: number; values: Partial<Record<SweepAxis, number>> }

/** Cells row by row: rows vary `rowAxis`, columns `columnAxis`. */
export function sweepCells(rowAxis: SweepAxis, rows: number[], columnAxis: SweepAxis, columns: number[]): SweepCellSpec[] {
  if (rowAxis === columnAxis) throw new SweepError('the two sweep axes must differ');
  return rows.flatMap((r, row) => columns.map((c, column) => ({ row, column, values: { [rowAxis]: r, [columnAxis]: c } })));
}

/** Index of the highest score (the first on ties), or −1 when nothing is scored. */
export function bestIndex(scores: readonly (number | undefined)[]): number {
  let best = -1;
  scores.forEach((s, i) => {
    if (s !== undefined && Number.isFinite(s) && (best < 0 || s > scores[best]!)) best = i;
  });
  return best;
}

/** Heat-map colour for a score between the grid's lowest and highest: dark blue (low) to yellow (high). */
export function heatColour(score: number, lo: number, hi: number): string {
  const t = hi > lo ? Math.min(1, Math.max(0, (score - lo) / (hi - lo))) : 0.5;
  const hue = 240 - 180 * t; // 240 blue → 60 yellow
  return `hsl(${hue.toFixed(0)} 80% ${(30 + 30 * t).toFixed(0)}%)`;
}

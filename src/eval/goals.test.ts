// The goal check reproduce prints: "met" needs the whole interval over the bar, the point estimate alone is said so.
import { describe, expect, it } from 'vitest';
import { checkGoals, type TableRow } from './goals.ts';

function row(config: string, fidelity: number, fidelityCI: [number, number], vsBase: [number, number, number], vsDpo: [number, number, number]): TableRow {
  return {
    config,
    reward: { fidelity }, rewardCI: { fidelity: fidelityCI },
    winRate: { vsBase: vsBase[0], vsDpo: vsDpo[0] }, winRateCI: { vsBase: [vsBase[1], vsBase[2]], vsDpo: [vsDpo[1], vsDpo[2]] },
  };
}

describe('checkGoals', () => {
  it('reads each goal from its own row and grades it by its interval', () => {
    const rows = [
      row('base', 0.72, [0.68, 0.76], [0.5, 0.5, 0.5], [0.4, 0.3, 0.5]),
      row('base+npo', 0.6, [0.5, 0.7], [0.8, 0.72, 0.87], [0.5, 0.4, 0.6]),
      row('dpo', 0.6, [0.5, 0.7], [0.6, 0.5, 0.7], [0.5, 0.5, 0.5]),
      row('dpo+npo', 0.6, [0.5, 0.7], [0.55, 0.45, 0.65], [0.5, 0.42, 0.58]),
    ];
    const [baseNpo, dpoNpo, fidelity] = checkGoals(rows);
    expect(baseNpo).toMatchObject({ value: 0.8, status: 'met' });
    expect(dpoNpo).toMatchObject({ value: 0.5, ci: [0.42, 0.58], status: 'not met' });
    expect(fidelity).toMatchObject({ value: 0.72, status: 'point estimate only' });
  });

  it('counts a win rate of exactly 60 % as not beating the bar, a fidelity of exactly 0.7 as reaching it', () => {
    const rows = [
      row('base', 0.7, [0.7, 0.75], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
      row('base+npo', 0, [0, 0], [0.6, 0.6, 0.7], [0, 0, 0]),
      row('dpo', 0, [0, 0], [0, 0, 0], [0, 0, 0]),
      row('dpo+npo', 0, [0, 0], [0, 0, 0], [0.61, 0.59, 0.7]),
    ];
    expect(checkGoals(rows).map((g) => g.status)).toEqual(['not met', 'point estimate only', 'met']);
  });

  it('names the missing configuration when the table lacks one', () => {
    expect(() => checkGoals([row('base', 0.7, [0.6, 0.8], [0, 0, 0], [0, 0, 0])])).toThrow(/no base\+npo row/);
  });
});

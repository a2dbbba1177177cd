// The embedded world's claims as checkable goals (issues 5 and 31), read off `npm run reproduce`'s held-out table so
// that a reader sees in one place which the models meet and by how much. A goal is "met" only when its whole 95 %
// interval clears the bar; a point estimate over the bar with an interval that reaches below it is said as such.
import type { Interval } from './bootstrap.ts';

export interface TableRow {
  config: string;
  reward: { fidelity: number };
  rewardCI: { fidelity: Interval };
  winRate: { vsBase: number; vsDpo: number };
  winRateCI: { vsBase: Interval; vsDpo: Interval };
}

export type GoalStatus = 'met' | 'point estimate only' | 'not met';

export interface GoalCheck { goal: string; value: number; ci: Interval; bar: number; status: GoalStatus }

/** The bars: NPO wins more than 60 % of paired comparisons against its reference; the base model draws what it is asked. */
export const GOALS = { npoWinRate: 0.6, baseFidelity: 0.7 } as const;

function check(goal: string, value: number, ci: Interval, bar: number, strict: boolean): GoalCheck {
  const clears = (x: number) => (strict ? x > bar : x >= bar);
  const status: GoalStatus = clears(ci[0]) ? 'met' : clears(value) ? 'point estimate only' : 'not met';
  return { goal, value, ci, bar, status };
}

/** The three goals, from the rows of a held-out table with base, base+npo, dpo and dpo+npo. */
export function checkGoals(rows: readonly TableRow[]): GoalCheck[] {
  const row = (config: string) => {
    const r = rows.find((x) => x.config === config);
    if (!r) throw new Error(`the table has no ${config} row; the goals need base, base+npo, dpo and dpo+npo`);
    return r;
  };
  const [base, baseNpo, dpoNpo] = [row('base'), row('base+npo'), row('dpo+npo')];
  return [
    check('base+npo beats base: win rate > 60 %', baseNpo.winRate.vsBase, baseNpo.winRateCI.vsBase, GOALS.npoWinRate, true),
    check('dpo+npo beats dpo: win rate > 60 %', dpoNpo.winRate.vsDpo, dpoNpo.winRateCI.vsDpo, GOALS.npoWinRate, true),
    check('base model fidelity ≥ 0.7', base.reward.fidelity, base.rewardCI.fidelity, GOALS.baseFidelity, false),
  ];
}

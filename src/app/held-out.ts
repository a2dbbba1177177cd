// The held-out numbers the page quotes under its two images: which comparison they show and how often NPO's image won
// on held-out prompts, from docs/reproduce.json (written by `npm run reproduce`, imported here at build time, so the
// page never states a number by hand). They belong to the embedded model committed in models/ with its own η and δ;
// any other model, or a LoRA of the person's own in either role, gets no sentence.
// The embedded model opens on the comparison where the held-out table measured NPO's gain: η off, base vs base+NPO
// (README, "the paper's table in our world"); other models open with η on, as the paper's DPO+NPO recipe.
import report from '../../docs/reproduce.json';
import { name as measuredModel } from '../../models/manifest.json';
import type { ModelInfo } from '../worker/protocol.ts';

interface Row {
  config: string;
  alpha: number;
  beta: number;
  omega: number;
  winRate: { vsBase: number; vsDpo: number };
  winRateCI: { vsBase: number[]; vsDpo: number[] };
}

/** What the page's two images are, and the held-out row that measured it: η off, base+npo vs base; η on, dpo+npo vs dpo. */
const COMPARISONS = {
  off: { row: 'base+npo', against: 'vsBase', what: 'the base model without NPO (left) and with NPO (right, θ_neg = θ + β·δ)', claim: 'base+NPO beats base' },
  on: { row: 'dpo+npo', against: 'vsDpo', what: 'the DPO model (θ + η) without NPO (left) and with NPO (right, θ_neg = θ + α·η + β·δ)', claim: 'DPO+NPO beats DPO' },
} as const;

export interface HeldOutClaim {
  sentence: string;
  /** The held-out win rate of the NPO image and its 95 % interval, as fractions. */
  winRate: number;
  interval: [number, number];
}

/** The model the held-out numbers were measured on (by name and family). */
export const isMeasuredModel = (model: ModelInfo | undefined) => model?.kind === 'embedded' && model.name === measuredModel;

/** Whether a model opens with η on: off for the measured model (its measured gain is base vs base+NPO), else on. */
export const opensWithEta = (model: ModelInfo) => !isMeasuredModel(model);

/** The sentence for the shown comparison, or undefined where no held-out number applies (`ownLoras`: a LoRA of the person's in use). */
export function heldOutClaim(model: ModelInfo | undefined, etaOn: boolean, ownLoras: boolean): HeldOutClaim | undefined {
  if (!isMeasuredModel(model) || ownLoras) return undefined;
  const comparison = COMPARISONS[etaOn ? 'on' : 'off'];
  const row = (report.rows as Row[]).find((r) => r.config === comparison.row);
  if (!row) return undefined;
  const winRate = row.winRate[comparison.against];
  const [low, high] = row.winRateCI[comparison.against];
  const settings = [etaOn ? `α ${row.alpha}` : '', `β ${row.beta}`, `ω ${row.omega}`].filter(Boolean).join(', ');
  const samples = `${report.prompts} held-out prompts × ${report.samples / report.prompts} seeds`;
  const sentence = `Shown: ${comparison.what}. On ${samples} at ${settings}, ${comparison.claim} in ${percent(winRate)} of comparisons `
    + `(95 % interval ${percent(low, '')}–${percent(high)}) by the embedded world's reward.`;
  return { sentence, winRate, interval: [low, high] };
}

const percent = (x: number, unit = ' %') => `${Math.round(100 * x)}${unit}`;

// Bootstrap confidence intervals over prompts (issue 12, item 4) for `npm run reproduce`: each resample draws the
// prompts with replacement and keeps every seed of a drawn prompt together (a cluster bootstrap: samples of one prompt
// are not independent), then recomputes the statistic; the interval is the percentile interval of the resamples
// (Efron & Tibshirani 1993, §13.3). Seeded (the world's mulberry32), so a report is reproducible to the digit.
import { createRng } from '../world/random.ts';

export type Interval = [number, number];

export interface BootstrapOptions {
  resamples?: number; // default 2000
  level?: number; // default 0.95
  seed?: number; // default 12
}

/**
 * Percentile interval of `statistic` over prompt resamples. `groups[p]` holds the indices (into whatever arrays the
 * statistic reads) of prompt p's samples; the statistic gets the concatenated indices of one resample.
 */
export function bootstrapInterval(groups: readonly (readonly number[])[], statistic: (indices: number[]) => number, options: BootstrapOptions = {}): Interval {
  const { resamples = 2000, level = 0.95, seed = 12 } = options;
  if (groups.length === 0) throw new RangeError('bootstrapInterval needs at least one prompt');
  if (!(level > 0 && level < 1)) throw new RangeError(`bootstrap level must be in (0, 1), got ${level}`);
  const rng = createRng(seed);
  const values = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    const indices: number[] = [];
    for (let p = 0; p < groups.length; p++) indices.push(...groups[Math.floor(rng() * groups.length)]);
    values[r] = statistic(indices);
  }
  values.sort();
  return [quantile(values, (1 - level) / 2), quantile(values, 1 - (1 - level) / 2)];
}

/** Linear-interpolated quantile (numpy's default, "type 7") of sorted values. */
export function quantile(sorted: Float64Array | readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h), hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Indices of each prompt's samples, prompts in first-seen order. */
export function groupByPrompt(prompts: readonly string[]): number[][] {
  const groups = new Map<string, number[]>();
  prompts.forEach((p, i) => (groups.get(p) ?? groups.set(p, []).get(p)!).push(i));
  return [...groups.values()];
}

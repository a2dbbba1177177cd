// What a preparation into the browser's storage (OPFS) says about the site's quota, from navigator.storage.estimate():
// before writing, whether the model's files fit what is left; after a write failed with QuotaExceededError, how much
// the site may use and uses. Chromium's estimate is the quota the site really has (DevTools' quota override is not
// reflected in it, so e2e/prepare-page.spec.ts sees the second message, not the first).
import { formatBytes } from '../util/format-bytes.ts';

export interface QuotaEstimate { quota?: number; usage?: number }

const ADVICE = 'Free space (remove prepared models or other site data) or choose float16 weights / a rank-r η, then prepare again';

/** The sentence refusing `bytes` of files, or undefined where they fit (or the browser does not say its quota). */
export function storageShortfall(bytes: number, { quota, usage = 0 }: QuotaEstimate): string | undefined {
  if (!quota) return undefined;
  const left = Math.max(0, quota - usage);
  if (bytes <= left) return undefined;
  return `this model needs about ${formatBytes(bytes)} of browser storage; this site may use ${formatBytes(quota)} and uses ${formatBytes(usage)}, ${formatBytes(left)} left. ${ADVICE}`;
}

/** The sentence for a write the browser refused with QuotaExceededError. */
export function quotaExceeded({ quota = 0, usage = 0 }: QuotaEstimate): string {
  return `browser storage is full (QuotaExceededError): this site may use ${formatBytes(quota)} and uses ${formatBytes(usage)}; the model needs more than the ${formatBytes(Math.max(0, quota - usage))} left. ${ADVICE}`;
}

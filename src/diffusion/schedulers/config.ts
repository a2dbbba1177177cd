// Reading a model's `scheduler_config.json`. diffusers writes it with Python's json.dumps, which emits the bare
// tokens Infinity, -Infinity and NaN (e.g. DPMSolverMultistep's "lambda_min_clipped": -Infinity); JSON.parse rejects
// those, so this parser maps them to numbers first. The file is treated as untrusted: it must be one JSON object.

import type { SchedulerConfig } from './types.ts';
import { jsonLimitProblem } from '../../util/json-limits.ts';

/** A scheduler_config.json this parser refuses (the message names the problem). */
export class SchedulerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerConfigError';
  }
}

const SPECIAL: Record<string, number> = { Infinity: Infinity, '-Infinity': -Infinity, NaN: NaN };
const MARK = '\u0000npo-special:';

/**
 * Quotes Python's non-finite tokens outside strings so JSON.parse accepts them; the reviver turns them back.
 * Copies slices between tokens (one pass, no per-character string building: a 1 MiB file takes milliseconds).
 */
function quoteSpecials(text: string): string {
  let out = '';
  let last = 0;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++;
      i++;
      continue;
    }
    const token = c === 0x2d || c === 0x49 || c === 0x4e ? ['-Infinity', 'Infinity', 'NaN'].find((t) => text.startsWith(t, i)) : undefined;
    if (token) {
      out += text.slice(last, i) + JSON.stringify(MARK + token);
      i += token.length;
      last = i;
    } else i++;
  }
  return out + text.slice(last);
}

export function parseSchedulerConfig(text: string): SchedulerConfig {
  // Size and depth first: the reviver below recurses once per nesting level.
  const tooBig = jsonLimitProblem(text, { maxChars: 1 << 20 });
  if (tooBig) throw new SchedulerConfigError(`scheduler_config.json is refused: ${tooBig}`);
  let value: unknown;
  try {
    value = JSON.parse(quoteSpecials(text), (_k, v) => (typeof v === 'string' && v.startsWith(MARK) ? SPECIAL[v.slice(MARK.length)] : v));
  } catch (e) {
    throw new SchedulerConfigError(`scheduler_config.json is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new SchedulerConfigError('scheduler_config.json must contain a JSON object');
  return value as SchedulerConfig;
}

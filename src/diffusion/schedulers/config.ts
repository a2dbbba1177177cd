// Reading a model's `scheduler_config.json`. diffusers writes it with Python's json.dumps, which emits the bare
// tokens Infinity, -Infinity and NaN (e.g. DPMSolverMultistep's "lambda_min_clipped": -Infinity); JSON.parse rejects
// those, so this parser maps them to numbers first. The file is treated as untrusted: it must be one JSON object.

import type { SchedulerConfig } from './types.ts';

/** A scheduler_config.json this parser refuses (the message names the problem). */
export class SchedulerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchedulerConfigError';
  }
}

const SPECIAL: Record<string, number> = { Infinity: Infinity, '-Infinity': -Infinity, NaN: NaN };
const MARK = '\u0000npo-special:';

/** Quotes Python's non-finite tokens outside strings so JSON.parse accepts them; the reviver turns them back. */
function quoteSpecials(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      out += ch;
      if (ch === '\\') out += text[++i] ?? '';
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      out += ch;
      continue;
    }
    const token = ['-Infinity', 'Infinity', 'NaN'].find((t) => text.startsWith(t, i));
    if (token) {
      out += JSON.stringify(MARK + token);
      i += token.length - 1;
    } else out += ch;
  }
  return out;
}

export function parseSchedulerConfig(text: string): SchedulerConfig {
  if (text.length > 1 << 20) throw new SchedulerConfigError('scheduler_config.json is larger than 1 MiB; refusing to parse');
  let value: unknown;
  try {
    value = JSON.parse(quoteSpecials(text), (_k, v) => (typeof v === 'string' && v.startsWith(MARK) ? SPECIAL[v.slice(MARK.length)] : v));
  } catch (e) {
    throw new SchedulerConfigError(`scheduler_config.json is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new SchedulerConfigError('scheduler_config.json must contain a JSON object');
  return value as SchedulerConfig;
}

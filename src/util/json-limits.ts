// Size and nesting limits for JSON read from hostile files (safetensors headers, manifests, scheduler configs,
// pairs.json, PEFT metadata), checked in one linear pass before JSON.parse. JSON.parse itself copes with deep
// nesting, but what runs on its result does not: a reviver, JSON.stringify, or Array.join in an error message
// recurse once per level and overflow the stack (a RangeError instead of the parser's own error) at ~10^4 levels.
// No file we read needs more than a handful of levels; serde_json (the safetensors reference) stops at 128.

export const DEFAULT_MAX_DEPTH = 64;

export interface JsonLimits {
  /** Longest text accepted, in UTF-16 code units (about bytes for ASCII JSON). */
  maxChars: number;
  maxDepth?: number;
}

/** What is wrong with `text` under `limits`, or undefined when it is within them (it may still be invalid JSON). */
export function jsonLimitProblem(text: string, { maxChars, maxDepth = DEFAULT_MAX_DEPTH }: JsonLimits): string | undefined {
  if (text.length > maxChars) return `it is ${text.length} characters long, more than the limit of ${maxChars}`;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return `it nests arrays and objects more than ${maxDepth} levels deep (at character ${i})`;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return undefined;
}

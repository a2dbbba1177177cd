// The page URL as the settings: `?prompt=…&negativePrompt=…&seed=7&steps=20&omega=4&alpha=1&beta=1&scheduler=ddim&eta=off`,
// read on open and rewritten on every change, so a copied link reproduces the images. `eta` is the "η (DPO) on both
// branches" switch (on: the model's η; off: none), written only for a model that has an η. Other query keys
// (`backend`, `model`) pass through untouched.
import type { GenerateParams } from '../worker/protocol.ts';

const TEXT_KEYS = ['prompt', 'negativePrompt', 'scheduler'] as const;
const NUMBER_KEYS = ['seed', 'steps', 'omega', 'alpha', 'beta'] as const;
/** Image size: only prepared models take it; absent means the model's own size. */
const SIZE_KEYS = ['width', 'height'] as const;

export function paramsFromQuery(query: URLSearchParams): Partial<GenerateParams> {
  const out: Partial<GenerateParams> = {};
  for (const key of TEXT_KEYS) {
    const value = query.get(key);
    if (value !== null) out[key] = value;
  }
  for (const key of [...NUMBER_KEYS, ...SIZE_KEYS]) {
    const value = Number(query.get(key) ?? NaN);
    if (query.has(key) && Number.isFinite(value)) out[key] = value;
  }
  return out;
}

/** The η switch a link states: true (on), false (off), or undefined (not stated, or neither word). */
export function etaFromQuery(query: URLSearchParams): boolean | undefined {
  return onOff(query.get('eta'));
}

/** 'on' → true, 'off' → false, anything else undefined (the η switch in URLs and PNG parameters). */
export const onOff = (text: string | null | undefined) => (text === 'on' ? true : text === 'off' ? false : undefined);

/** `search` with the settings written into it (keys in a fixed order, other keys kept); `eta` undefined drops the key. */
export function queryWithParams(search: string, params: GenerateParams, eta?: boolean): string {
  const query = new URLSearchParams(search);
  for (const key of [...TEXT_KEYS, ...NUMBER_KEYS]) query.set(key, String(params[key]));
  for (const key of SIZE_KEYS) {
    const value = params[key];
    if (value === undefined) query.delete(key);
    else query.set(key, String(value));
  }
  if (eta === undefined) query.delete('eta');
  else query.set('eta', eta ? 'on' : 'off');
  return `?${query.toString()}`;
}

// `--eta-lora` / `--delta-lora` (prepare-model) and `--eta` / `--delta` (generate) take `path` or `path:scale` and may
// be repeated: the LoRAs stack on that branch, each ΔW times its scale (diffusers' set_adapters adapter weights).
// A trailing `:number` is a scale only when the whole argument is not itself an existing file (paths may hold colons).
import { existsSync } from 'node:fs';
import type { LoraArg } from '../prepare/prepare.ts';

export function parseLoraArg(raw: string, flag: string, exists: (path: string) => boolean = existsSync): LoraArg {
  const m = /^(.+):([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)$/i.exec(raw);
  if (!m || exists(raw)) return { path: raw, scale: 1 };
  const scale = Number(m[2]);
  if (!Number.isFinite(scale)) throw new Error(`--${flag} ${raw}: scale ${m[2]} is not a finite number`);
  return { path: m[1], scale };
}

export const parseLoraArgs = (raws: readonly string[] | undefined, flag: string): LoraArg[] => (raws ?? []).map((r) => parseLoraArg(r, flag));

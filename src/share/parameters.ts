// The playground's settings as AUTOMATIC1111's `parameters` text (what A1111, ComfyUI's A1111 reader, InvokeAI's
// importer and civitai read from a PNG), and back:
//
//   a small red circle
//   Negative prompt: blurry
//   Steps: 20, Sampler: DDIM, CFG scale: 5, Seed: 42, Size: 32x32, Model: embedded-world, NPO alpha: 1, NPO beta: 1, NPO eta: off, NPO delta: model
//
// "CFG scale" is diffusers' guidance scale g = ω + 1 (DESIGN §2). "NPO eta" is the page's "η (DPO) on both branches"
// switch (on: θ_pos = θ + η; off: the base model, θ_pos = θ), stated only for a model with an η. Values with a comma, colon, quote or newline are
// JSON-quoted, as A1111's `quote()` does; the reader follows A1111's `parse_generation_parameters` (the last line
// holds the key: value list; "Negative prompt:" starts the negative prompt).
import type { GenerateParams } from '../worker/protocol.ts';
import { SCHEDULER_LABELS, type SchedulerName } from '../diffusion/schedulers/index.ts';
import { onOff } from './settings-url.ts';

export interface SharedSettings {
  params: GenerateParams;
  width: number;
  height: number;
  model?: string;
  /** The η switch (undefined: the model has no η). */
  eta?: boolean;
  /** Which δ the NPO image used ("model" for the model's own). */
  delta?: string;
}

export class ParametersError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParametersError';
  }
}

/** A1111's sampler names where ours differ (A1111 calls PNDM "PLMS"). */
const A1111_NAMES: Partial<Record<SchedulerName, string>> = { pndm: 'PLMS' };

export function samplerName(scheduler: string): string {
  return A1111_NAMES[scheduler as SchedulerName] ?? SCHEDULER_LABELS[scheduler as SchedulerName] ?? scheduler;
}

/** Our scheduler for an A1111 sampler name (and its newer separate "Schedule type"), or undefined. */
export function schedulerFromSampler(sampler: string, scheduleType?: string): string | undefined {
  const full = `${sampler}${scheduleType && /karras/i.test(scheduleType) && !/karras/i.test(sampler) ? ' Karras' : ''}`.trim().toLowerCase();
  for (const [name, label] of Object.entries(SCHEDULER_LABELS)) {
    const names = [label, A1111_NAMES[name as SchedulerName], name, name === 'pndm' ? 'PNDM' : undefined];
    if (names.some((n) => n?.toLowerCase() === full)) return name;
  }
  return undefined;
}

/** A number as short as it prints exactly (ω + 1 without float noise such as 1.2500000000000002). */
const num = (x: number) => String(Number(x.toFixed(10)));

function quote(text: string): string {
  return /[,:\n"]/.test(text) ? JSON.stringify(text) : text;
}

export function formatParameters({ params: p, width, height, model, eta, delta }: SharedSettings): string {
  const fields: [string, string][] = [
    ['Steps', String(p.steps)], ['Sampler', samplerName(p.scheduler)], ['CFG scale', num(p.omega + 1)], ['Seed', String(p.seed)],
    ['Size', `${width}x${height}`], ...(model ? [['Model', model] as [string, string]] : []),
    ['NPO alpha', num(p.alpha)], ['NPO beta', num(p.beta)], ...(eta === undefined ? [] : [['NPO eta', eta ? 'on' : 'off'] as [string, string]]), ...(delta ? [['NPO delta', delta] as [string, string]] : []),
  ];
  const lines = [p.prompt];
  if (p.negativePrompt) lines.push(`Negative prompt: ${p.negativePrompt}`);
  lines.push(fields.map(([k, v]) => `${k}: ${quote(v)}`).join(', '));
  return lines.join('\n');
}

// Keys are short (A1111's longest are ~20 characters) and a match starts at a word character: both keep matchAll
// linear on hostile text (an unbounded key, or a leading \s*, retried at every position made it quadratic).
const FIELD = /([\w][\w \-/]{0,63}):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
/** A parameters text longer than this is refused (prompts and their settings are a few KB). */
export const MAX_PARAMETERS_CHARS = 64 << 10;

/** The key: value list of A1111's last line (quoted values unquoted). */
export function parseFields(line: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [, key, raw] of line.matchAll(FIELD)) {
    let value = raw.trim();
    if (value.startsWith('"') && value.endsWith('"')) {
      try { value = JSON.parse(value); } catch { /* keep it as written */ }
    }
    out.set(key.trim(), value);
  }
  return out;
}

function number(fields: Map<string, string>, key: string): number | undefined {
  if (!fields.has(key)) return undefined;
  const value = Number(fields.get(key));
  if (!Number.isFinite(value)) throw new ParametersError(`parameters: "${key}" is ${JSON.stringify(fields.get(key))}, not a number`);
  return value;
}

export interface ParsedParameters {
  /** The settings the text states; a setting it does not state is absent. */
  params: Partial<GenerateParams>;
  size?: { width: number; height: number };
  model?: string;
  /** The η switch, when the text states it ("NPO eta: on" or "off"). */
  eta?: boolean;
  delta?: string;
  /** Fields kept as text that the playground cannot apply (an unknown sampler, say). */
  ignored: string[];
}

export function parseParameters(text: string): ParsedParameters {
  if (text.length > MAX_PARAMETERS_CHARS) throw new ParametersError(`parameters: the text is ${text.length} characters long; the limit is ${MAX_PARAMETERS_CHARS}`);
  const lines = text.replace(/\r\n?/g, '\n').trim().split('\n');
  const last = lines.at(-1) ?? '';
  const fields = parseFields(last);
  if (fields.size < 3 || !fields.has('Steps')) throw new ParametersError('parameters: no "Steps: …, Sampler: …" line, so this is not A1111-style generation data');
  lines.pop();
  const negativeAt = lines.findIndex((l) => l.startsWith('Negative prompt:'));
  const prompt = (negativeAt < 0 ? lines : lines.slice(0, negativeAt)).join('\n').trim();
  const negative = negativeAt < 0 ? '' : lines.slice(negativeAt).join('\n').slice('Negative prompt:'.length).trim();
  const params: Partial<GenerateParams> = { prompt, negativePrompt: negative };
  const ignored: string[] = [];
  const steps = number(fields, 'Steps');
  if (steps !== undefined) {
    if (!Number.isInteger(steps) || steps < 1) throw new ParametersError(`parameters: "Steps" must be a positive whole number, got ${steps}`);
    params.steps = steps;
  }
  const cfg = number(fields, 'CFG scale');
  if (cfg !== undefined) params.omega = Number((cfg - 1).toFixed(10));
  const seed = number(fields, 'Seed');
  if (seed !== undefined) params.seed = seed;
  const alpha = number(fields, 'NPO alpha');
  if (alpha !== undefined) params.alpha = alpha;
  const beta = number(fields, 'NPO beta');
  if (beta !== undefined) params.beta = beta;
  if (fields.has('Sampler')) {
    const scheduler = schedulerFromSampler(fields.get('Sampler')!, fields.get('Schedule type'));
    if (scheduler) params.scheduler = scheduler;
    else ignored.push(`Sampler: ${fields.get('Sampler')}`);
  }
  const eta = onOff(fields.get('NPO eta'));
  if (fields.has('NPO eta') && eta === undefined) ignored.push(`NPO eta: ${fields.get('NPO eta')}`);
  const size = /^(\d+)x(\d+)$/.exec(fields.get('Size') ?? '');
  return {
    params,
    size: size ? { width: Number(size[1]), height: Number(size[2]) } : undefined,
    model: fields.get('Model'),
    eta,
    delta: fields.get('NPO delta'),
    ignored,
  };
}

// Read a LoRA safetensors file in diffusers / PEFT / kohya key format into a canonical LoraSet keyed by the graph's
// module paths (DESIGN §3). Keys are matched against the targets the ONNX pass found, never guessed:
//   - dotted formats: strip a known prefix (unet., base_model.model.) and look the path up among the targets;
//   - kohya: '_' is ambiguous, so we spell every target the kohya way (and the SGM way, for SDXL files) and look up.
// Scale (alpha / rank), per format:
//   - kohya: `<name>.alpha` tensor; missing or 0 -> alpha = rank (sd-scripts networks/lora.py LoRAModule), so scale 1.
//   - PEFT: `__metadata__.lora_adapter_metadata` JSON as diffusers writes it (`unet.lora_alpha`, `unet.alpha_pattern`,
//     `unet.use_rslora`, or the same keys unprefixed); alpha_pattern keys are matched literally as dotted suffixes
//     of the module path (PEFT treats them as regexes; we never run a regex from a file, and a key with regex
//     syntax is an error rather than a silent miss). No alpha -> scale 1.
//   - diffusers (old): no alpha in the format -> scale 1; a `<path>.alpha` tensor is honoured if present (any dotted
//     format), with the kohya rule.
// Decisions (documented for the worker):
//   - text-encoder keys (lora_te*, text_encoder*.) are listed in `skipped`, not applied: our graphs are UNets;
//   - keys matching no target are an error by default ({ unmatched: 'skip' } lists them in `skipped` instead);
//   - a k×k conv LoRA (down [r, in, kh, kw] with kh·kw > 1) on a matched target is an error ('format'): it cannot be
//     merged into a linear / 1×1 weight. 1×1 conv LoRAs ([r, in, 1, 1] / [out, r, 1, 1]) are accepted and marked
//     `conv1x1` so they are written back 4-D;
//   - LyCORIS (LoHa, LoKr, Tucker), DoRA, OFT, IA3, full diffs and PEFT LoRA bias are errors naming the variant
//     (silently dropping them would change the picture); on text-encoder keys they are just skipped.

import { LoraError } from './errors.ts';
import { classifyKey, DOTTED_PREFIXES, editDistance, expectedKey, kohyaName, sgmPath } from './keys.ts';
import type { KeyRole, LoraFormat } from './keys.ts';
import { readSafetensors } from './safetensors.ts';
import { jsonLimitProblem } from '../util/json-limits.ts';
import type { SafetensorsFile, SafetensorsTensor } from './safetensors.ts';
import type { LoraEntry, LoraSet, LoraTarget } from './types.ts';

export interface ParseLoraOptions {
  /** 'error' (default): keys that match no target throw. 'skip': they are listed in `skipped`. */
  unmatched?: 'error' | 'skip';
}

export const TEXT_ENCODER_REASON = 'text-encoder LoRA: not applied (only the UNet is patched)';
export const UNMATCHED_REASON = 'matches no target weight of the model';

/** Parse safetensors bytes and map them onto `targets`. Throws LoraError with a specific message. */
export function parseLora(bytes: Uint8Array, targets: readonly LoraTarget[], options: ParseLoraOptions = {}): LoraSet {
  return loraFromSafetensors(readSafetensors(bytes), targets, options);
}

interface TargetIndex {
  byPath: Map<string, LoraTarget>;
  byKohya: Map<string, string[]>; // kohya module name (diffusers or SGM spelling) -> module paths
}

function indexTargets(targets: readonly LoraTarget[]): TargetIndex {
  const byPath = new Map<string, LoraTarget>();
  const byKohya = new Map<string, string[]>();
  const addKohya = (name: string, path: string) => {
    const list = byKohya.get(name) ?? [];
    if (!list.includes(path)) list.push(path);
    byKohya.set(name, list);
  };
  for (const t of targets) {
    const ok = (n: number) => Number.isSafeInteger(n) && n > 0;
    if (typeof t.modulePath !== 'string' || t.modulePath === '' || !ok(t.inFeatures) || !ok(t.outFeatures)) {
      throw new LoraError(`invalid LoRA target ${JSON.stringify(t)}: need a module path and positive integer in/out features`, 'argument');
    }
    if (byPath.has(t.modulePath)) throw new LoraError(`LoRA target ${t.modulePath} is listed twice`, 'argument');
    byPath.set(t.modulePath, t);
    addKohya(kohyaName(t.modulePath), t.modulePath);
    const sgm = sgmPath(t.modulePath);
    if (sgm) addKohya(kohyaName(sgm), t.modulePath);
  }
  return { byPath, byKohya };
}

interface Group {
  down?: string;
  up?: string;
  alpha?: string;
}

type Classified = { key: string; format: LoraFormat | 'dotted'; module: string; role: KeyRole };

/** Short sample of a key list for messages: 'a', 'b', 'c' (and 7 more). */
function sample(keys: readonly string[], n = 3): string {
  const shown = keys.slice(0, n).map((k) => JSON.stringify(k.length > 160 ? `${k.slice(0, 160)}…` : k)).join(', ');
  return keys.length > n ? `${shown} (and ${keys.length - n} more)` : shown;
}

/** Sort keys into LoRA keys to map, skipped text-encoder keys, and errors for everything we cannot use. */
function classifyAll(keys: readonly string[], skipped: LoraSet['skipped']): { lora: Classified[]; formats: Set<string>; examples: Map<string, string> } {
  const lora: Classified[] = [];
  const unknown: string[] = [];
  const unsupported = new Map<string, string[]>();
  const formats = new Set<string>();
  const examples = new Map<string, string>();
  for (const key of keys) {
    const c = classifyKey(key);
    if (c.kind === 'unknown') { unknown.push(key); continue; }
    if (c.kind === 'lora' && c.format !== 'dotted') {
      formats.add(c.format);
      if (!examples.has(c.format)) examples.set(c.format, key);
    }
    if (c.textEncoder) { skipped.push({ key, reason: TEXT_ENCODER_REASON }); continue; }
    if (c.kind === 'unsupported') {
      const list = unsupported.get(c.variant) ?? [];
      list.push(key);
      unsupported.set(c.variant, list);
      continue;
    }
    lora.push({ key, format: c.format, module: c.module, role: c.role });
  }
  if (unknown.length > 0) {
    const what = unknown.length === keys.length ? 'no LoRA tensors in a known format' : `${unknown.length} of ${keys.length} tensors that are not LoRA weights in a known format`;
    throw new LoraError(
      `LoRA file has ${what}: ${sample(unknown)}. Expected diffusers (<path>.lora.down.weight), PEFT (<path>.lora_A.weight) or kohya (lora_unet_<name>.lora_down.weight) keys`,
      'format',
    );
  }
  for (const [variant, list] of unsupported) {
    throw new LoraError(`unsupported LoRA variant ${variant}: ${list.length} UNet tensor(s) such as ${sample(list, 2)}; only plain LoRA (down/up) can be merged`, 'format');
  }
  return { lora, formats, examples };
}

function detectFormat(formats: Set<string>, examples: Map<string, string>, lora: Classified[], skippedCount: number): LoraFormat {
  if (formats.size > 1) {
    const parts = [...formats].map((f) => `${f} (e.g. ${JSON.stringify(examples.get(f))})`);
    throw new LoraError(`LoRA file mixes key formats: ${parts.join(' and ')}; convert it to one format`, 'format');
  }
  if (formats.size === 0) {
    const only = lora.length > 0 ? `only alpha tensors such as ${sample(lora.map((c) => c.key), 2)}`
      : skippedCount > 0 ? `only text-encoder tensors (${skippedCount})` : 'no tensors';
    throw new LoraError(`LoRA file has ${only}: no down/up weights to apply`, 'format');
  }
  const format = [...formats][0] as LoraFormat;
  if (format === 'kohya') {
    const stray = lora.filter((c) => c.format === 'dotted').map((c) => c.key);
    if (stray.length > 0) throw new LoraError(`LoRA file mixes key formats: kohya keys with dotted alpha keys such as ${sample(stray, 2)}`, 'format');
  }
  return format;
}

/** Module path of the target a classified key refers to, or null if none. */
function resolveTarget(c: Classified, index: TargetIndex): string | null {
  if (c.format === 'kohya') {
    const paths = index.byKohya.get(c.module);
    if (!paths) return null;
    if (paths.length > 1) {
      throw new LoraError(`kohya key ${JSON.stringify(c.key)} is ambiguous: it spells both ${paths.join(' and ')} ('.' and '_' both become '_')`, 'format');
    }
    return paths[0];
  }
  for (const prefix of DOTTED_PREFIXES) {
    if (c.module.startsWith(prefix) && index.byPath.has(c.module.slice(prefix.length))) return c.module.slice(prefix.length);
  }
  return null;
}

function dottedPrefixOf(key: string): string {
  return DOTTED_PREFIXES.find((p) => p !== '' && key.startsWith(p)) ?? '';
}

/** 'N of M keys match no target, e.g. "k" (closest expected: "e")' with the nearest expected spelling per key. */
function unmatchedMessage(unmatched: Classified[], total: number, format: LoraFormat, targets: readonly LoraTarget[]): string {
  const hints = unmatched.slice(0, 3).map((c) => {
    const key = c.key.slice(0, 200);
    let best = '';
    let bestD = Infinity;
    for (const t of targets) {
      const cand = expectedKey(format, t.modulePath, c.role, dottedPrefixOf(c.key));
      const d = editDistance(key, cand);
      if (d < bestD) { bestD = d; best = cand; }
    }
    return best ? `${JSON.stringify(c.key.slice(0, 160))} (closest expected: ${JSON.stringify(best)})` : JSON.stringify(c.key.slice(0, 160));
  });
  const more = unmatched.length > 3 ? ` and ${unmatched.length - 3} more` : '';
  const example = targets.length > 0 ? `; expected keys like ${JSON.stringify(expectedKey(format, targets[0].modulePath, 'down'))}` : '; the model has no LoRA targets';
  return `${unmatched.length} of ${total} ${format} LoRA keys match no target weight of the model (${targets.length} targets): ${hints.join(', ')}${more}${example}`;
}

function groupByTarget(lora: Classified[], index: TargetIndex, format: LoraFormat, targets: readonly LoraTarget[], options: ParseLoraOptions, skipped: LoraSet['skipped']): Map<string, Group> {
  const groups = new Map<string, Group>();
  const unmatched: Classified[] = [];
  for (const c of lora) {
    const path = resolveTarget(c, index);
    if (path === null) { unmatched.push(c); continue; }
    const g = groups.get(path) ?? {};
    const prev = g[c.role];
    if (prev !== undefined) throw new LoraError(`keys ${JSON.stringify(prev)} and ${JSON.stringify(c.key)} both give the ${c.role} weight of ${path}`, 'format');
    g[c.role] = c.key;
    groups.set(path, g);
  }
  if (unmatched.length > 0) {
    if (options.unmatched === 'skip') for (const c of unmatched) skipped.push({ key: c.key, reason: UNMATCHED_REASON });
    else throw new LoraError(unmatchedMessage(unmatched, lora.length, format, targets), 'unmatched');
  }
  return groups;
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Check a down/up tensor is [a, b] or [a, b, 1, 1]; k×k conv LoRA is refused. Returns [a, b]. */
function matrixDims(key: string, t: SafetensorsTensor, role: 'down' | 'up'): [number, number] {
  const s = t.shape;
  const form = role === 'down' ? '[rank, in] or [rank, in, 1, 1]' : '[out, rank] or [out, rank, 1, 1]';
  if (s.length === 4 && (s[2] !== 1 || s[3] !== 1)) {
    throw new LoraError(`${key}: conv LoRA with a ${s[2]}×${s[3]} kernel (shape ${shapeStr(s)}) is unsupported; only linear and 1×1 conv LoRAs can be merged`, 'format');
  }
  if (s.length !== 2 && s.length !== 4) throw new LoraError(`${key}: shape ${shapeStr(s)} is not a LoRA ${role} matrix ${form}`, 'shape');
  return [s[0], s[1]];
}

function checkFinite(key: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new LoraError(`${key}: value ${data[i]} at index ${i} (LoRA weights must be finite)`, 'value');
  }
}

function alphaFromTensor(key: string, t: SafetensorsTensor): number {
  if (t.data.length !== 1) throw new LoraError(`${key}: alpha must be a single number, got shape ${shapeStr(t.shape)}`, 'shape');
  const a = t.data[0];
  if (!Number.isFinite(a)) throw new LoraError(`${key}: alpha is ${a}`, 'value');
  return a;
}

interface PeftAlpha {
  alpha?: number;
  pattern: [string, number][];
  rslora: boolean;
}

/** Alpha settings from diffusers' `lora_adapter_metadata` (LoraConfig as JSON, keys optionally prefixed `unet.`). */
export function peftAlphaConfig(metadata: Record<string, string>): PeftAlpha | null {
  const raw = metadata.lora_adapter_metadata;
  if (raw === undefined) return null;
  const tooBig = jsonLimitProblem(raw, { maxChars: 10_000_000 });
  if (tooBig) throw new LoraError(`__metadata__.lora_adapter_metadata is refused: ${tooBig}`, 'format');
  let cfg: unknown;
  try {
    cfg = JSON.parse(raw);
  } catch {
    throw new LoraError('__metadata__.lora_adapter_metadata is not valid JSON', 'format');
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) throw new LoraError('__metadata__.lora_adapter_metadata is not a JSON object', 'format');
  const c = cfg as Record<string, unknown>;
  const get = (k: string) => (Object.hasOwn(c, `unet.${k}`) ? c[`unet.${k}`] : Object.hasOwn(c, k) ? c[k] : undefined);
  const alpha = get('lora_alpha');
  if (alpha !== undefined && alpha !== null && !(typeof alpha === 'number' && Number.isFinite(alpha))) {
    throw new LoraError(`__metadata__.lora_adapter_metadata: lora_alpha is ${JSON.stringify(alpha)}, expected a number`, 'format');
  }
  const patternRaw = get('alpha_pattern') ?? {};
  if (typeof patternRaw !== 'object' || patternRaw === null || Array.isArray(patternRaw)) {
    throw new LoraError('__metadata__.lora_adapter_metadata: alpha_pattern is not an object', 'format');
  }
  const pattern = Object.entries(patternRaw as Record<string, unknown>).map(([k, v]): [string, number] => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new LoraError(`__metadata__.lora_adapter_metadata: alpha_pattern[${JSON.stringify(k)}] is not a number`, 'format');
    if (/[\\^$*+?()[\]{}|]/.test(k)) {
      throw new LoraError(`__metadata__.lora_adapter_metadata: alpha_pattern key ${JSON.stringify(k)} is a regular expression; only literal module-path suffixes are supported`, 'format');
    }
    return [k, v];
  });
  return { alpha: typeof alpha === 'number' ? alpha : undefined, pattern, rslora: get('use_rslora') === true };
}

/** PEFT LoraLayer.update_layer: scaling = alpha / r, or alpha / sqrt(r) with rsLoRA. */
function peftScale(cfg: PeftAlpha | null, path: string, rank: number): number {
  if (!cfg) return 1;
  const hit = cfg.pattern.find(([p]) => path === p || path.endsWith(`.${p}`));
  const alpha = hit ? hit[1] : cfg.alpha;
  if (alpha === undefined) return 1;
  return alpha / (cfg.rslora ? Math.sqrt(rank) : rank);
}

function buildEntry(path: string, g: Group, target: LoraTarget, file: SafetensorsFile, format: LoraFormat, peft: PeftAlpha | null): LoraEntry {
  if (g.down === undefined || g.up === undefined) {
    const have = g.down ?? g.up ?? g.alpha!;
    const missing = g.down === undefined ? 'down' : 'up';
    const prefix = format === 'kohya' ? '' : dottedPrefixOf(have);
    throw new LoraError(`${have} has no matching ${missing} weight for ${path} (expected ${JSON.stringify(expectedKey(format, path, missing, prefix))})`, 'missing');
  }
  const down = file.tensors.get(g.down)!;
  const up = file.tensors.get(g.up)!;
  const [rank, inF] = matrixDims(g.down, down, 'down');
  const [outF, upRank] = matrixDims(g.up, up, 'up');
  if (rank !== upRank) throw new LoraError(`rank mismatch for ${path}: ${g.down} has rank ${rank} (shape ${shapeStr(down.shape)}) but ${g.up} has rank ${upRank} (shape ${shapeStr(up.shape)})`, 'shape');
  if (rank < 1) throw new LoraError(`${g.down}: rank 0 LoRA (shape ${shapeStr(down.shape)})`, 'shape');
  if (inF !== target.inFeatures) throw new LoraError(`${g.down}: shape ${shapeStr(down.shape)} has ${inF} input features but ${path} expects ${target.inFeatures} (expected [${rank}, ${target.inFeatures}])`, 'shape');
  if (outF !== target.outFeatures) throw new LoraError(`${g.up}: shape ${shapeStr(up.shape)} has ${outF} output features but ${path} expects ${target.outFeatures} (expected [${target.outFeatures}, ${rank}])`, 'shape');
  checkFinite(g.down, down.data);
  checkFinite(g.up, up.data);
  let scale: number;
  if (g.alpha !== undefined) {
    const a = alphaFromTensor(g.alpha, file.tensors.get(g.alpha)!);
    scale = (a === 0 ? rank : a) / rank; // kohya: alpha 0 or missing means alpha = rank
  } else {
    scale = format === 'peft' ? peftScale(peft, path, rank) : 1;
  }
  const entry: LoraEntry = { down: down.data, up: up.data, rank, scale, inFeatures: inF, outFeatures: outF };
  if (down.shape.length === 4) entry.conv1x1 = true;
  return entry;
}

/** Map an already-parsed safetensors file onto `targets` (see the file header for the rules). */
export function loraFromSafetensors(file: SafetensorsFile, targets: readonly LoraTarget[], options: ParseLoraOptions = {}): LoraSet {
  const index = indexTargets(targets);
  const skipped: LoraSet['skipped'] = [];
  const { lora, formats, examples } = classifyAll([...file.tensors.keys()], skipped);
  const format = detectFormat(formats, examples, lora, skipped.length);
  const groups = groupByTarget(lora, index, format, targets, options, skipped);
  const peft = format === 'peft' ? peftAlphaConfig(file.metadata) : null;
  const entries = new Map<string, LoraEntry>();
  for (const t of targets) {
    const g = groups.get(t.modulePath);
    if (g) entries.set(t.modulePath, buildEntry(t.modulePath, g, t, file, format, peft));
  }
  return { format, entries, skipped, metadata: file.metadata };
}

/** ΔW = scale · up · down, accumulated in float64, as [out, in] (torch layout) or [in, out] (ONNX MatMul layout). */
export function loraDeltaWeight(entry: LoraEntry, layout: 'out-in' | 'in-out' = 'out-in'): Float32Array {
  const { down, up, rank, scale, inFeatures: nIn, outFeatures: nOut } = entry;
  const out = new Float32Array(nIn * nOut);
  for (let o = 0; o < nOut; o++) {
    for (let i = 0; i < nIn; i++) {
      let s = 0;
      for (let k = 0; k < rank; k++) s += up[o * rank + k] * down[k * nIn + i];
      out[layout === 'out-in' ? o * nIn + i : i * nOut + o] = scale * s;
    }
  }
  return out;
}

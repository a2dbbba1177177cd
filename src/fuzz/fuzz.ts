// The fuzz loop: input `index` of a run with seed `seed` is a seeded mutation of one of the target's seed files (or,
// now and then, a valid file of another kind), so (target, seed, index) names an input exactly. Each input is parsed
// once; the outcome is 'ok' (accepted), 'rejected' (the parser's own error), 'crash' (anything else thrown) or
// 'hang' (slower than the time bound). Crashes and hangs are saved in src/fuzz/corpus/<target>/ and replayed by
// src/fuzz/fuzz.test.ts. Node only.
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createRandom } from '../train/random.ts';
import { pick } from './mutate.ts';
import { TARGETS, targetByName, type FuzzTarget, type Parts } from './targets.ts';

export const CORPUS_DIR = new URL('./corpus/', import.meta.url).pathname;
/** Default time bound per input (ms): a parse slower than this is a hang. */
export const DEFAULT_BOUND_MS = 1000;

export type OutcomeKind = 'ok' | 'rejected' | 'crash' | 'hang';
export interface Outcome {
  kind: OutcomeKind;
  ms: number;
  /** The thrown value's type and message (rejected, crash), or the slow parse's error / 'accepted' (hang). */
  detail?: string;
}

export interface Finding {
  target: string;
  seed: number;
  index: number;
  kind: 'crash' | 'hang';
  detail: string;
  ms: number;
  parts: Parts;
}

export interface FuzzStats {
  target: string;
  runs: number;
  ok: number;
  rejected: number;
  crashes: number;
  hangs: number;
  maxMs: number;
  peakMB: number;
  findings: Finding[];
}

/** A 32-bit mix of (seed, index): neighbouring indices give unrelated random streams. */
function mix(seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}

/** Input `index` of the run `seed` on `target` (deterministic). */
export function generate(target: FuzzTarget, seed: number, index: number): Parts {
  const r = createRandom(mix(seed, index));
  if (r.uniform() < 0.04) {
    // A valid file of the wrong kind (an ONNX model as a LoRA, a safetensors file as a manifest, …).
    const other = pick(r, TARGETS.filter((t) => t !== target));
    return [pick(r, other.seeds())[0]];
  }
  const base = pick(r, target.seeds());
  return r.uniform() < 0.02 ? base : target.mutate(r, base);
}

const describe = (e: unknown) => (e instanceof Error ? `${e.constructor.name}: ${e.message}` : `thrown ${typeof e}: ${String(e)}`).slice(0, 300);

export async function runOne(target: FuzzTarget, parts: Parts, boundMs = DEFAULT_BOUND_MS): Promise<Outcome> {
  const start = performance.now();
  let kind: OutcomeKind = 'ok';
  let detail: string | undefined;
  try {
    await target.run(parts);
  } catch (error) {
    kind = target.expected(error) ? 'rejected' : 'crash';
    detail = describe(error);
  }
  const ms = performance.now() - start;
  if (kind !== 'crash' && ms > boundMs) return { kind: 'hang', ms, detail: `took ${ms.toFixed(0)} ms (bound ${boundMs} ms); ${detail ?? 'accepted'}` };
  return { kind, ms, detail };
}

/**
 * A slow parse is timed twice more and judged by its fastest run: on a shared machine a GC pause or another process
 * can stall one parse for a second; a real hang (work that grows with a hostile claim) is slow every time.
 */
async function retimed(target: FuzzTarget, parts: Parts, first: Outcome, boundMs: number): Promise<Outcome> {
  if (first.kind !== 'hang') return first;
  let best = first;
  for (let k = 0; k < 2 && best.kind === 'hang'; k++) {
    const again = await runOne(target, parts, boundMs);
    if (again.ms < best.ms) best = again;
  }
  return best;
}

const rssMB = () => process.memoryUsage.rss() / 2 ** 20;

export interface FuzzOptions {
  target: string;
  runs: number;
  seed: number;
  boundMs?: number;
  /** First index (a worker restarted after a hang continues after it). */
  from?: number;
  /** Called before each input (the CLI's watchdog heartbeat). */
  onInput?: (index: number) => void;
  onFinding?: (finding: Finding) => void;
}

export async function fuzz({ target: name, runs, seed, boundMs = DEFAULT_BOUND_MS, from = 0, onInput, onFinding }: FuzzOptions): Promise<FuzzStats> {
  const target = targetByName(name);
  // Load seeds and lazy state (the LoRA targets come from the UNet graph) and warm the JIT before timing anything.
  for (const parts of target.seeds()) await runOne(target, parts, Infinity);
  const stats: FuzzStats = { target: name, runs: 0, ok: 0, rejected: 0, crashes: 0, hangs: 0, maxMs: 0, peakMB: rssMB(), findings: [] };
  for (let index = from; index < runs; index++) {
    onInput?.(index);
    const parts = generate(target, seed, index);
    const outcome = await retimed(target, parts, await runOne(target, parts, boundMs), boundMs);
    stats.runs++;
    stats.maxMs = Math.max(stats.maxMs, outcome.ms);
    if (index % 16 === 0) stats.peakMB = Math.max(stats.peakMB, rssMB());
    if (outcome.kind === 'ok') stats.ok++;
    else if (outcome.kind === 'rejected') stats.rejected++;
    else {
      stats[outcome.kind === 'crash' ? 'crashes' : 'hangs']++;
      const finding: Finding = { target: name, seed, index, kind: outcome.kind, detail: outcome.detail ?? '', ms: outcome.ms, parts };
      stats.findings.push(finding);
      onFinding?.(finding);
    }
  }
  stats.peakMB = Math.max(stats.peakMB, rssMB());
  return stats;
}

// ---------------------------------------------------------------------------------------------------------------------
// Corpus: one gzipped JSON file per finding, the input's files in base64.
// ---------------------------------------------------------------------------------------------------------------------

export interface CorpusEntry {
  target: string;
  seed: number;
  index: number;
  kind: 'crash' | 'hang';
  detail: string;
  parts: string[];
}

export function saveFinding(f: Finding, dir = CORPUS_DIR): string {
  const folder = join(dir, f.target);
  mkdirSync(folder, { recursive: true });
  const path = join(folder, `${f.kind}-s${f.seed}-i${f.index}.json.gz`);
  const entry: CorpusEntry = { target: f.target, seed: f.seed, index: f.index, kind: f.kind, detail: f.detail, parts: f.parts.map((p) => Buffer.from(p).toString('base64')) };
  writeFileSync(path, gzipSync(`${JSON.stringify(entry, null, 1)}\n`, { level: 9 }));
  return path;
}

export function loadCorpus(dir = CORPUS_DIR): { path: string; entry: CorpusEntry; parts: Parts }[] {
  if (!existsSync(dir)) return [];
  const out: { path: string; entry: CorpusEntry; parts: Parts }[] = [];
  for (const target of readdirSync(dir)) {
    for (const file of readdirSync(join(dir, target)).filter((f) => /\.json(\.gz)?$/.test(f)).sort()) {
      const path = join(dir, target, file);
      const raw = readFileSync(path);
      const entry = JSON.parse((file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')) as CorpusEntry;
      out.push({ path, entry, parts: entry.parts.map((p) => new Uint8Array(Buffer.from(p, 'base64'))) });
    }
  }
  return out;
}

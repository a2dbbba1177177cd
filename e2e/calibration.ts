// What one generation costs on this machine, per backend, measured at the start of the e2e run (global-setup.ts) in
// headless Chromium against the built app and the embedded model, and the wait budgets derived from it (helpers.ts).
// A failure report can then say whether the machine was slow (the calibration says so, and the budget was sized to
// it) or the page was stuck (it missed a budget several times what the work should take here).
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

export type Backend = 'webgpu' | 'wasm';

/** Measured costs of one backend (milliseconds), as the worker's 'done' events report them. */
export interface BackendCost {
  /** One batched UNet call (one sampling step of both images): the slope of generation time over steps. */
  unetCallMs: number;
  /** What a warm generation costs besides its UNet calls (text encoding, decoding, read-backs, messages). */
  overheadMs: number;
  /** Page open to the first images (1 step): worker start, model fetch and hash, session creation, first-use shader
   * and pipeline compilation. */
  firstLoadMs: number;
  /** The raw measurement: a warm generation of 2 steps. */
  generationMs?: number;
}

export interface Calibration {
  measuredAt: string;
  cores: number;
  loadAverage: number[];
  backends: Partial<Record<Backend, BackendCost>>;
  /** Backends whose measurement failed, with the reason; their budgets fall back to FALLBACK. */
  failures: Partial<Record<Backend, string>>;
}

/** Beside the other reports of the run (reports/e2e.json), whatever the working directory. */
export const CALIBRATION_FILE = fileURLToPath(new URL('../reports/calibration.json', import.meta.url));

/**
 * Costs stated for a slow 2-core machine (issue 15: ~20 s per batched UNet call on SwiftShader), used when no
 * calibration exists (it failed, or a spec runs outside the configured global setup).
 */
export const FALLBACK: Record<Backend, BackendCost> = {
  webgpu: { unetCallMs: 30_000, overheadMs: 5_000, firstLoadMs: 120_000 },
  wasm: { unetCallMs: 2_000, overheadMs: 2_000, firstLoadMs: 30_000 },
};

/**
 * Budget = HEADROOM × loadFactor × expected time + FLOOR. The calibration runs once at the start; the machine may get
 * busier later (loadFactor follows the load average) and timings vary between runs of the same work, so expected
 * times are multiplied generously: a budget only costs time when a page is really stuck.
 */
export const HEADROOM = 5;
/** Added to every budget: React renders, worker messages and canvas reads that do not scale with the model. */
export const FLOOR_MS = 30_000;

let cached: Calibration | undefined;

export function readCalibration(): Calibration | undefined {
  if (cached) return cached;
  const path = process.env.E2E_CALIBRATION ?? CALIBRATION_FILE;
  if (!existsSync(path)) return undefined;
  return (cached = JSON.parse(readFileSync(path, 'utf8')) as Calibration);
}

export function costOf(backend: Backend): BackendCost {
  return readCalibration()?.backends[backend] ?? FALLBACK[backend];
}

/** What a wait covers: `generations` generations of `steps` steps each, and optionally the first open of the page. */
export interface Work {
  steps: number;
  generations?: number;
  /** The page is opening: model load, session creation and first-use compilation come first. */
  load?: boolean;
  /** Training steps (browser training runs about TRAIN_STEP_CALLS UNet-call equivalents per sample pair). */
  trainSteps?: number;
  trainBatch?: number;
}

/**
 * A DPO/NPO training step, per pair in the batch, counted in sampling calls: forward and backward of the trained UNet
 * on winner and loser, and the reference's forward. On WebGPU here one step of one pair took about as long as 2-3
 * sampling calls (train.spec.ts, load average ~25); 8 leaves room for the backward pass costing more elsewhere.
 */
export const TRAIN_STEP_CALLS = 8;

/** Milliseconds the work should take here, before headroom. */
export function expectedMs(backend: Backend, work: Work): number {
  const cost = costOf(backend);
  const generation = cost.overheadMs + work.steps * cost.unetCallMs;
  const training = (work.trainSteps ?? 0) * Math.max(1, work.trainBatch ?? 1) * TRAIN_STEP_CALLS * cost.unetCallMs;
  return (work.load ? cost.firstLoadMs : 0) + (work.generations ?? 1) * generation + training;
}

/**
 * How much busier the machine is now than during the calibration: runnable processes per core, now over then (1-minute
 * load averages). On a shared 2-core machine others' jobs come and go; a test's share of the CPU shrinks with them.
 */
export function loadFactor(c = readCalibration()): number {
  if (!c) return 1;
  const cores = Math.max(1, c.cores);
  return Math.max(1, (cores + loadavg()[0]) / (cores + c.loadAverage[0]));
}

export const budgetMs = (backend: Backend, work: Work) => Math.ceil(HEADROOM * loadFactor() * expectedMs(backend, work) + FLOOR_MS);

/** One line per backend for the log and for failure messages. */
export function describeCalibration(c = readCalibration()): string {
  if (!c) return 'no calibration (reports/calibration.json missing): budgets use the stated slow-machine costs';
  const rows = (['webgpu', 'wasm'] as const).map((b) => {
    const cost = c.backends[b];
    if (!cost) return `  ${b.padEnd(6)}  not measured (${c.failures[b] ?? 'not run'}); budgets assume ${FALLBACK[b].unetCallMs} ms per UNet call`;
    return `  ${b.padEnd(6)}  ${fmt(cost.unetCallMs)} per UNet call, ${fmt(cost.overheadMs)} per generation besides, ${fmt(cost.firstLoadMs)} to the first images`;
  });
  return [`calibration (${c.measuredAt}, ${c.cores} cores, load average ${c.loadAverage.map((l) => l.toFixed(2)).join(' ')}):`, ...rows].join('\n');
}

const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

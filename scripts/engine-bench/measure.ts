// The engine benchmark's measurements (issue 6), shared by the Node script (scripts/bench-engine.ts) and the Chromium
// page (scripts/engine-bench/page.ts): given an engine made through createEngine's public API, it measures merge time
// and bytes, per-step time of plain CFG vs NPO-CFG, read-backs per image and the time from an α change to the first new
// step, and formats one backend's row. No Node or DOM imports: it runs unchanged in both places.
import type { ModelManifest } from '../../src/model/manifest.ts';
import type { Engine } from '../../src/engine/engine.ts';
import type { GenerateParams } from '../../src/worker/protocol.ts';

export type BenchBackend = 'webgpu' | 'wasm';
interface StepTimes { first: number; steady: number; unetCallsPerStep: number }

/** One backend's measurements; `adapter` and `software` come from whoever made the device. */
export interface BenchRow {
  backend: BenchBackend;
  adapter: string;
  software: boolean;
  merge: { milliseconds: number; bytes: number };
  cfg: StepTimes;
  npo: StepTimes;
  loop: 'gpu' | 'cpu';
  readBacks: number; // over one two-image generation (baseline + NPO)
  alphaMove: number;
  omegaMove: number;
  /** A whole generation of both images (baseline + NPO, one batched UNet call per step), median wall time. */
  both: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Per-step times (ms) of one generation, from onStep timestamps; the first step (warm-up effects) is dropped. */
export async function stepTimes(engine: Engine, p: GenerateParams, images: ('baseline' | 'npo')[]): Promise<StepTimes> {
  const marks: number[] = [performance.now()];
  await engine.generate(p, images, { onStep: () => void marks.push(performance.now()) });
  const times = marks.slice(1).map((t, i) => t - marks[i]);
  // UNet calls per step tell whether NPO-CFG's two weight sets really share one call (stacked θ_pos/θ_neg).
  const unetCallsPerStep = engine.stats().unetCalls / Math.max(1, times.length);
  return { first: times[0], steady: times.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, times.length - 1), unetCallsPerStep };
}

export async function timeToFirstStep(engine: Engine, p: GenerateParams) {
  const started = performance.now();
  let first = 0;
  await engine.generate(p, ['npo'], { onStep: (step) => { if (step === 1) first = performance.now() - started; } });
  return first;
}

/** Merge time: the engine's own merge stats over `repeats` α values (each α change re-merges θ_neg), either backend. */
async function mergeBench(engine: Engine, params: GenerateParams, repeats: number) {
  const ms: number[] = [];
  for (let r = 0; r < repeats; r++) { await engine.generate({ ...params, steps: 1, alpha: 0.1 + r / (10 * repeats) }, ['npo'], {}); ms.push(engine.stats().merge!.milliseconds); }
  return { milliseconds: median(ms), bytes: engine.stats().merge!.bytes };
}

/**
 * Plain CFG vs NPO-CFG step times from `repeats` alternating generations, as medians: on a shared 2-core machine one
 * slow step (another process, GC) would otherwise decide the ratio.
 */
async function stepComparison(engine: Engine, params: GenerateParams, repeats: number) {
  const cfg: StepTimes[] = [];
  const npo: StepTimes[] = [];
  const both: number[] = [];
  for (let r = 0; r < repeats; r++) {
    cfg.push(await stepTimes(engine, params, ['baseline']));
    npo.push(await stepTimes(engine, params, ['npo']));
    const started = performance.now();
    await engine.generate(params, ['baseline', 'npo'], {});
    both.push(performance.now() - started);
  }
  const pick = (ts: StepTimes[]) => ({ first: median(ts.map((t) => t.first)), steady: median(ts.map((t) => t.steady)), unetCallsPerStep: ts[ts.length - 1].unetCallsPerStep });
  return { cfg: pick(cfg), npo: pick(npo), both: median(both) };
}

/** Time to the first step after an α change (re-merge) and, for comparison, after an ω change alone; medians. */
async function controlMoves(engine: Engine, params: GenerateParams, repeats: number) {
  let { alpha, omega } = { alpha: 0.9, omega: params.omega };
  await timeToFirstStep(engine, { ...params, alpha, omega });
  const alphaMoves: number[] = [];
  const omegaMoves: number[] = [];
  for (let r = 0; r < repeats; r++) {
    alpha = alpha === 0.9 ? 0.35 : 0.9;
    alphaMoves.push(await timeToFirstStep(engine, { ...params, alpha, omega }));
    omega += 1;
    omegaMoves.push(await timeToFirstStep(engine, { ...params, alpha, omega }));
  }
  return { alphaMove: median(alphaMoves), omegaMove: median(omegaMoves) };
}

/** All measurements of one backend on a ready engine (the caller creates and releases it). */
export async function measureEngine(engine: Engine, params: GenerateParams, repeats = 5) {
  // Warm-up: both batch sizes, so shader compilation (seconds per pipeline on SwiftShader) is out of the numbers.
  await engine.generate({ ...params, steps: 2 }, ['baseline', 'npo'], {});
  await engine.generate({ ...params, steps: 2 }, ['baseline'], {});
  await engine.generate({ ...params, steps: 2 }, ['npo'], {});
  const merge = await mergeBench(engine, params, repeats);
  const { cfg, npo, both } = await stepComparison(engine, params, repeats);
  await engine.generate(params, ['baseline', 'npo'], {});
  const { readBacks, loop } = engine.stats();
  return { merge, cfg, npo, both, loop, readBacks, ...(await controlMoves(engine, params, repeats)) };
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const gbps = (bytes: number, ms: number) => `${(bytes / 1e9 / (ms / 1e3)).toFixed(2)} GB/s`;

export function formatHeader(manifest: ModelManifest, params: GenerateParams, repeats: number) {
  return `model ${manifest.name} (${manifest.unet.config.sampleSize}², channels ${manifest.unet.config.blockOutChannels}), ${params.steps} steps, scheduler ${params.scheduler}; medians of ${repeats} runs`;
}

/** One backend's block of the table, the lines `npm run bench` has always printed. */
export function formatRow(row: BenchRow): string[] {
  const gpu = row.backend === 'webgpu';
  const { merge, cfg, npo } = row;
  const reads = gpu ? `${row.readBacks / 2}${row.loop === 'cpu' ? ' (CPU loop: every UNet output is read back)' : ''}` : 'none (no GPU; everything in wasm memory)';
  return [
    `\n[${row.backend}] ${row.adapter}${gpu && row.software ? '  (software rasteriser: not predictive of a real GPU)' : ''}`,
    `  merge θ_neg = θ + α·η + β·δ: ${fmt(merge.milliseconds)}, ${(merge.bytes / 1e6).toFixed(2)} MB moved, ${gbps(merge.bytes, merge.milliseconds)}${gpu ? ' (LoRA factors; wall time incl. submit + onSubmittedWorkDone)' : ' (the engine\'s CPU merge, float64 per element)'}`,
    `  per step: plain CFG ${fmt(cfg.steady)}, NPO-CFG ${fmt(npo.steady)}, ratio ${(npo.steady / cfg.steady).toFixed(2)} (first steps ${fmt(cfg.first)} / ${fmt(npo.first)}; UNet calls per step ${cfg.unetCallsPerStep} / ${npo.unetCallsPerStep})`,
    `  loop: ${row.loop}; GPU→CPU read-backs per image: ${reads}`,
    `  α change → first new step: ${fmt(row.alphaMove)} (ω change: ${fmt(row.omegaMove)})`,
    `  both images (baseline + NPO), whole generation: ${fmt(row.both)}`,
  ];
}

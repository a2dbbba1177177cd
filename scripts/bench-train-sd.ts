// Benchmark of DPO/NPO training on prepared SD models (issue 14): prints tables, asserts nothing.
//   npm run bench:train:sd -- [--steps 6] [--batch 1] [--sd15-unet <model.onnx>] [--sdxl-unet <model.onnx>] [--checkpointing-only | --plans-only]
// 1. The tiny real-export SD1.5 and SDXL fixtures (fixtures/sd15, fixtures/sdxl, prepared into temporary directories) trained on
//    onnxruntime-node's CPU EP: session setup, steps/s and the process's peak RSS growth, beside the memory plan
//    (src/train/memory-plan.ts) for the same configuration.
// 2. The plan against a measured step: one DPO training step of the tiny fixture's graph at larger latents (where
//    activations, not weights, dominate), each in a fresh process with ORT's arena off, its peak RSS growth beside the
//    planned activations + transient.
// 3. The plan for SD1.5 at 256² and 512², rank 8, batch 1-4, from a full-size UNet graph's real layer shapes (only the
//    graph is read, the weights stay in their external file): scripts/fixtures/make_sd15_fullsize.py writes one to
//    /work/tmp/sd15-fullsize/unet/model.onnx (the default here when it exists); fp32 as exported, fp16 weights (the
//    trainer's `weights: 'fp16'`: frozen weights stored as float16, everything computed in float32, dpo-graph.ts) and
//    fp16 (weights and activations at 2 bytes, as an all-fp16 graph on a shader-f16 adapter would run them). Without a
//    full-size graph, the same table for the tiny fixture's graph at 64² and 512². SDXL base likewise at 512² and 1024²
//    (context [77, 2048]) from scripts/fixtures/make_sdxl_fullsize.py's graph, /work/tmp/sdxl-fullsize/unet/model.onnx
//    by default (--sdxl-unet); without a graph those rows are left out and say so.
// 4. Activation checkpointing (src/onnx/autodiff/checkpoint.ts): one training step of the tiny fixture graph at the
//    latent sizes of SD1.5 at 256² and 512² (32² and 64²), off / blocks / layers, each in a fresh process (arena off):
//    planned activations + transient beside the measured peak RSS growth and the time of a second step
//    (the first warms up; one intra-op thread, and CPU time beside wall time: on a shared machine the CPU time is the stable
//    number), with the ratios to the plain graph; and the plan of the full-size SD1.5 and SDXL graphs with each mode.
//    `-- --checkpointing-only` runs this part alone (with 3.).
// `-- --plans-only` prints only the plans (3. and the plans of 4.; no training runs).
// `-- --plan-check` (issue 27): the memory plan against the real peak over a grid of the tiny SD1.5 export (latents
//    16²–64², batch 1–2, rank 4–16, checkpointing off/layers, fp32/fp16 weights), the tiny SDXL export (32²–64²) and
//    the embedded UNet, each cell one fresh process running the trainer's own session (dpoSessionOptions: its arena and
//    memory-pattern settings): session creation and two steps, the peak RSS growth beside the plan's total. Goal:
//    planned ≥ measured in every cell, and at most 1.3× it. `--unets sd15,sdxl,embedded,sd15-full` picks the UNets
//    (default the first three); sd15-full is SD1.5 at 512², rank 8, batch 1 on the full-size graph
//    (make_sd15_fullsize.py's, prepared, in /work/tmp) as the trainer runs it in 8 GiB: blocks checkpointing, fp16 weights, arena
//    off (about 10 minutes on 2 cores, 8 GB). Every cell runs as `npm run train` does: its malloc setting, the
//    UNet's files let go once the session holds them (training-process.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import type { PreparedManifest } from '../src/model/manifest.ts';
import { externalLocations, readModel } from '../src/onnx/model-io.ts';
import { int, type ModelProto } from '../src/onnx/proto.ts';
import { readModelDirectory } from '../src/pipelines/read-directory.ts';
import { assembleSdxlExport } from './fixtures/sdxl-export.ts';
import { buildDpoGraph, dpoSessionOptions, type WeightsPrecision } from '../src/train/dpo-graph.ts';
import { ARENA_FACTOR, planTrainingMemory, type TrainMemoryOptions, type TrainMemoryPlan } from '../src/train/memory-plan.ts';
import { createRandom } from '../src/train/random.ts';
import { CHECKPOINT_MODES, type CheckpointMode } from '../src/train/unet-segments.ts';
import { trainLora } from '../src/train/train-lora.ts';
import { collectGarbage, TRAINING_MALLOC_ENV } from '../src/cli/training-process.ts';

const { values } = parseArgs({ options: { steps: { type: 'string' }, batch: { type: 'string' }, 'sd15-unet': { type: 'string' }, 'sdxl-unet': { type: 'string' }, 'measure-step': { type: 'string' }, 'checkpointing-only': { type: 'boolean' }, 'plans-only': { type: 'boolean' }, 'plan-check': { type: 'boolean' }, 'plan-cell': { type: 'string' }, unets: { type: 'string', default: 'sd15,sdxl,embedded' } } });
const steps = Number(values.steps ?? 6);
const batch = Number(values.batch ?? 1);
const root = join(import.meta.dirname, '..');
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
const gib = (b: number) => (b / 2 ** 30).toFixed(2);

/** A tiny fixture: `exportDir` prepared, trained `steps` steps at 64² (β_dpo: the family's default). */
async function tinyFixture(title: string, exportDir: string) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-train-sd-'));
  execFileSync(join(root, 'node_modules/.bin/tsx'), ['src/cli/prepare-model.ts', '--onnx', exportDir, '--out', dir], { cwd: root, stdio: 'pipe' });
  const { manifest, files } = readModelDirectory(dir);
  const S = 64;
  const r = createRandom(1);
  const pairs = Array.from({ length: 4 }, (_, k) => ({
    prompt: 'a photo of a cat',
    winner: Float32Array.from({ length: 3 * S * S }, (_, i) => 0.6 + 0.3 * Math.sin(i / 6 + k)),
    loser: Float32Array.from({ length: 3 * S * S }, () => -0.5 + 0.4 * r.normal()),
  }));
  let peak = process.memoryUsage().rss;
  const base = peak;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  let firstStepAt = 0;
  const { history } = await trainLora({
    ort, model: { manifest, files }, pairs, steps, batch, rank: 8, lr: 1e-4, resolution: { width: S, height: S },
    sessionOptions: { logSeverityLevel: 3, graphOptimizationLevel: 'basic' },
    onStep: (rep) => { if (rep.step === 1) firstStepAt = performance.now() - rep.stepMs; },
  });
  clearInterval(timer);
  const stepMs = history.slice(1).reduce((s, h) => s + h.stepMs, 0) / Math.max(1, history.length - 1);
  const prepared = manifest as PreparedManifest;
  const unet = readModel(files.get(prepared.unet.file)!);
  const plan = planTrainingMemory(unet, { batch, latentDims: [4, 8, 8], contextDims: [prepared.context.length, prepared.context.dim], rank: 8 });
  console.log(`\n## Tiny ${title} fixture (64², latents 4×8×8), rank 8, batch ${batch}, ${steps} steps, onnxruntime-node CPU`);
  console.log('| setup (graph + sessions + VAE) s | step ms (after the first) | steps/s | peak RSS growth MiB | planned total MiB | planned activations MiB |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| ${((firstStepAt - t0) / 1000).toFixed(1)} | ${stepMs.toFixed(0)} | ${(1000 / stepMs).toFixed(2)} | ${mib(peak - base)} | ${mib(plan.totalBytes)} | ${mib(plan.activationsBytes)} |`);
  console.log("(the RSS growth also holds ORT's arena, the training graph's protobuf and the sessions' copies of the weights: at this size they dwarf the plan's activations)");
}

function planTable(title: string, path: string, context: number[], sides: number[], unit: 'GiB' | 'MiB' = 'GiB') {
  const u = unit === 'GiB' ? gib : mib;
  const unet = readModel(readFileSync(path));
  console.log(`\n## Planned memory: ${title}, rank 8 (graph ${path})`);
  console.log(`| resolution | batch | weights ${unit} | activations ${unit} | transient ${unit} | LoRA+AdamW MiB | total fp32 ${unit} | weights fp16: weights / activations / total ${unit} | total fp16 ${unit} | largest buffer MiB (fp32) |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  let last: TrainMemoryPlan | undefined;
  for (const side of sides) {
    for (const b of [1, 2, 3, 4]) {
      const o: TrainMemoryOptions = { batch: b, latentDims: [4, side / 8, side / 8], contextDims: context, rank: 8 };
      const p = planTrainingMemory(unet, o);
      const w = planTrainingMemory(unet, { ...o, weights: 'fp16' });
      const h = planTrainingMemory(unet, { ...o, weightBytes: 2, activationBytes: 2 });
      console.log(`| ${side}² | ${b} | ${u(p.weightsBytes)} | ${u(p.activationsBytes)} | ${u(p.transientBytes)} | ${mib(p.loraBytes)} | ${u(p.totalBytes)} | ${u(w.weightsBytes)} / ${u(w.activationsBytes)} / ${u(w.totalBytes)} | ${u(h.totalBytes)} | ${mib(p.largestTensorBytes)} |`);
      last = p;
    }
  }
  // the weights against the graph's parameter count (SDXL base: 2,567,463,684; SD1.5: 859,520,964), and what the plan
  // could not size (float values whose shape inference failed: left out of the activations)
  const elements = (unet.graph!.initializer ?? []).reduce((s, t) => s + (t.dims ?? []).map(int).reduce((a, d) => a * d, 1), 0);
  console.log(`(weights ${last!.weightsBytes} bytes: ${elements} initializer elements; ${last!.unknownValues} float values of unknown shape left out of the activations; ${last!.loraParams} LoRA parameters)`);
}

const TINY_UNET = join(root, 'fixtures/sd15/export-diffusers/unet/model.onnx');

/** Child process: one training step at latent side×side, batch B; prints the process's peak RSS growth in bytes. */
async function measureStep(side: number, pairs: number, checkpoint: CheckpointMode = 'off', timedSteps = 0, threads = 0) {
  const unet = readModel(readFileSync(TINY_UNET));
  const graph = buildDpoGraph(unet, { rank: 8, imageDims: [4, side, side], contextDims: [77, 32], checkpoint });
  const externalData = externalLocations(unet).map((path) => ({ path, data: readFileSync(join(dirname(TINY_UNET), path)) }));
  const session = await ort.InferenceSession.create(graph.training, { externalData, enableCpuMemArena: false, logSeverityLevel: 3, ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}) });
  const r = createRandom(2);
  const t = (dims: number[], fill?: number) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => fill ?? r.normal()), dims);
  const latent = [pairs, 4, side, side];
  const feeds: Record<string, ort.Tensor> = {
    x_w: t(latent), x_l: t(latent), noise: t(latent), alpha_bar: t([pairs], 0.5), timestep: t([pairs], 500), context: t([pairs, 77, 32]),
    beta_dpo: t([], 500), lora_scale: t([], 1),
  };
  for (const l of graph.lora) Object.assign(feeds, { [l.a]: t([8, l.site.inFeatures]), [l.b]: t([l.site.outFeatures, 8]) });
  const before = process.resourceUsage().maxRSS * 1024;
  await session.run(feeds);
  const [t0, c0] = [performance.now(), process.cpuUsage()];
  for (let i = 0; i < timedSteps; i++) await session.run(feeds);
  const cpu = process.cpuUsage(c0);
  const per = (ms: number) => (timedSteps ? ms / timedSteps : 0);
  console.log(`${process.resourceUsage().maxRSS * 1024 - before} ${per(performance.now() - t0)} ${per((cpu.user + cpu.system) / 1000)}`);
}

function planVersusMeasured() {
  console.log('\n## Planned vs measured: one training step of the tiny fixture graph, onnxruntime-node CPU, arena off, fresh process each');
  console.log('| latents | batch | planned activations + transient MiB | measured peak RSS growth MiB | planned / measured |');
  console.log('|---|---|---|---|---|');
  const unet = readModel(readFileSync(TINY_UNET));
  for (const [side, b] of [[16, 1], [32, 1], [32, 2]]) {
    const [measured] = childStep(side, b, 'off', 0);
    const p = planTrainingMemory(unet, { batch: b, latentDims: [4, side, side], contextDims: [77, 32], rank: 8 });
    const planned = p.activationsBytes + p.transientBytes;
    console.log(`| 4×${side}×${side} | ${b} | ${mib(planned)} | ${mib(measured)} | ${(planned / measured).toFixed(2)} |`);
  }
}

/** measureStep in a fresh process: [peak RSS growth bytes, wall ms per step, CPU ms per step]. */
function childStep(side: number, pairs: number, checkpoint: CheckpointMode, timedSteps: number, threads = 0): number[] {
  const out = execFileSync(join(root, 'node_modules/.bin/tsx'), [import.meta.filename, '--measure-step', `${side},${pairs},${checkpoint},${timedSteps},${threads}`], { cwd: root, encoding: 'utf8' });
  return out.trim().split('\n').pop()!.split(' ').map(Number);
}

function checkpointing() {
  console.log('\n## Activation checkpointing: one DPO training step of the tiny fixture graph at SD1.5\'s latent sizes, rank 8, batch 1, onnxruntime-node CPU, one thread, arena off, fresh process each');
  console.log('| SD1.5 size (latents) | checkpoint | planned activations + transient MiB | measured peak RSS growth MiB | planned / measured | CPU ms per step | wall ms per step | RSS vs off | CPU time vs off |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const unet = readModel(readFileSync(TINY_UNET));
  for (const side of [32, 64]) {
    let base: number[] | undefined;
    for (const mode of CHECKPOINT_MODES) {
      const [rss, wall, cpu] = childStep(side, 1, mode, 1, 1);
      base ??= [rss, cpu];
      const p = planTrainingMemory(unet, { batch: 1, latentDims: [4, side, side], contextDims: [77, 32], rank: 8, checkpoint: mode });
      const planned = p.activationsBytes + p.transientBytes;
      console.log(`| ${side * 8}² (4×${side}×${side}) | ${mode} | ${mib(planned)} | ${mib(rss)} | ${(planned / rss).toFixed(2)} | ${cpu.toFixed(0)} | ${wall.toFixed(0)} | ${(rss / base[0]).toFixed(2)} | ${(cpu / base[1]).toFixed(2)} |`);
    }
  }
}

/** The plan with each activation-checkpointing mode, from a full-size graph (`title` names the model). */
function checkpointPlanTable(title: string, path: string, context: number[], sides: number[]) {
  const unet = readModel(readFileSync(path));
  console.log(`\n## Planned memory with activation checkpointing: ${title}, rank 8 (graph ${path})`);
  console.log('| resolution | batch | checkpoint | activations GiB | total fp32 GiB | total with weights fp16 GiB | total fp16 GiB | recomputed / plain activations |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const side of sides) {
    for (const b of [1, 2]) {
      let plain = 0;
      for (const checkpoint of CHECKPOINT_MODES) {
        const o: TrainMemoryOptions = { batch: b, latentDims: [4, side / 8, side / 8], contextDims: context, rank: 8, checkpoint };
        const p = planTrainingMemory(unet, o);
        const w = planTrainingMemory(unet, { ...o, weights: 'fp16' });
        const h = planTrainingMemory(unet, { ...o, weightBytes: 2, activationBytes: 2 });
        plain ||= p.activationsBytes;
        console.log(`| ${side}² | ${b} | ${checkpoint} | ${gib(p.activationsBytes)} | ${gib(p.totalBytes)} | ${gib(w.totalBytes)} | ${gib(h.totalBytes)} | ${(p.activationsBytes / plain).toFixed(2)} |`);
      }
    }
  }
}

/** The UNets of the plan-check grid: each one's graph, its latent (or pixel) dims at a side, and its context dims. */
// the prepared copy: its weights in shards under 2 GiB, which Node reads into one buffer each
const FULLSIZE_SD15_UNET = '/work/tmp/sd15-fullsize-prepared/unet/model.onnx';
const PLAN_UNETS = {
  sd15: { title: 'tiny SD1.5', path: TINY_UNET },
  sdxl: { title: 'tiny SDXL', path: join(root, 'fixtures/sdxl/export-optimum/unet/model.onnx') },
  embedded: { title: 'embedded', path: join(root, 'models/unet.onnx') },
  'sd15-full': { title: 'full-size SD1.5', path: FULLSIZE_SD15_UNET },
};

/** One plan-check cell: what the trainer's session for it plans and grows the process by (the child's side). */
interface PlanCell { unet: keyof typeof PLAN_UNETS; side: number; pairs: number; rank: number; checkpoint: CheckpointMode; weights: WeightsPrecision; arena?: boolean }

/** The cell's graph options: SD UNets' latents [4, side, side] and their declared context; the embedded model's own. */
function cellGraphOptions(c: PlanCell, unet: ModelProto) {
  if (c.unet === 'embedded') return { latentDims: [3, 32, 32], contextDims: [16, 64], graph: {} };
  const declared = unet.graph!.input!.find((v) => v.name === 'encoder_hidden_states')?.type?.tensorType?.shape?.dim?.[2]?.dimValue;
  const contextDims = [77, Number(declared ?? 768)];
  const latentDims = [4, c.side, c.side];
  return { latentDims, contextDims, graph: { imageDims: latentDims, contextDims } };
}

/** The trainer's session for a cell, with its feeds and the RSS before it was made (after the UNet's files were read). */
async function cellSession(c: PlanCell) {
  const path = PLAN_UNETS[c.unet].path;
  const unet = readModel(readFileSync(path));
  const { latentDims, contextDims, graph: dims } = cellGraphOptions(c, unet);
  const graph = buildDpoGraph(unet, { rank: c.rank, ...dims, checkpoint: c.checkpoint, weights: c.weights, batch: c.pairs });
  const externalData = externalLocations(unet).map((p) => ({ path: p, data: new Uint8Array(readFileSync(join(dirname(path), p))) }));
  const files = new Map(externalData.map((e) => [e.path, e.data]));
  const r = createRandom(2);
  const t = (dims: number[], fill?: number) => new ort.Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => fill ?? r.normal()), dims);
  const image = [c.pairs, ...latentDims];
  const feeds: Record<string, ort.Tensor> = {
    x_w: t(image), x_l: t(image), noise: t(image), alpha_bar: t([c.pairs], 0.5), timestep: t([c.pairs], 500), context: t([c.pairs, ...contextDims]),
    beta_dpo: t([], 500), lora_scale: t([], 1),
  };
  for (const added of graph.added) feeds[added.name] = t([c.pairs, ...added.dims]); // SDXL's text_embeds and time_ids
  for (const l of graph.lora) Object.assign(feeds, { [l.a]: t([c.rank, l.site.inFeatures]), [l.b]: t([l.site.outFeatures, c.rank], 0.01) });
  const before = process.memoryUsage().rss;
  // The trainer's own session options (train-lora.ts: 'basic' optimisation, then dpoSessionOptions).
  const session = await ort.InferenceSession.create(graph.training, dpoSessionOptions(graph, { graphOptimizationLevel: 'basic', logSeverityLevel: 3, externalData, ...(c.arena === false ? { enableCpuMemArena: false } : {}) }, files));
  return { session, feeds, before };
}

async function measurePlanCell(c: PlanCell) {
  const { session, feeds, before } = await cellSession(c);
  collectGarbage(); // the UNet's files and their float16 copy, as `npm run train` lets them go once the session holds them
  for (let i = 0; i < 2; i++) await session.run(feeds);
  console.log(`${process.resourceUsage().maxRSS * 1024 - before}`);
}

function planCheck(unets: ReadonlySet<keyof typeof PLAN_UNETS>) {
  console.log('\n## Memory plan vs measured peak: session creation and two training steps, onnxruntime-node CPU, the trainer\'s session options (fp16 weights: arena off), fresh process each');
  console.log('| UNet | latents | batch | rank | checkpoint | weights | planned GiB | measured, arena off GiB | planned / measured | measured, arena on GiB | arena on / planned |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  const grid: PlanCell[] = [
    ...[16, 32, 48, 64].flatMap((side) => [1, 2].map((pairs) => ({ unet: 'sd15' as const, side, pairs, rank: 8, checkpoint: 'off' as const, weights: 'fp32' as const }))),
    ...[32, 64].map((side) => ({ unet: 'sd15' as const, side, pairs: 1, rank: 8, checkpoint: 'layers' as const, weights: 'fp32' as const })),
    ...[32, 64].map((side) => ({ unet: 'sd15' as const, side, pairs: 1, rank: 8, checkpoint: 'off' as const, weights: 'fp16' as const })),
    ...[4, 16].map((rank) => ({ unet: 'sd15' as const, side: 32, pairs: 1, rank, checkpoint: 'off' as const, weights: 'fp32' as const })),
    ...[32, 64].map((side) => ({ unet: 'sdxl' as const, side, pairs: 1, rank: 8, checkpoint: 'off' as const, weights: 'fp32' as const })),
    { unet: 'sdxl', side: 64, pairs: 1, rank: 8, checkpoint: 'layers', weights: 'fp16' },
    { unet: 'embedded', side: 32, pairs: 8, rank: 4, checkpoint: 'off', weights: 'fp32' },
    // SD1.5 at 512², rank 8, batch 1 as the trainer runs it in 8 GiB (`npm run train -- --memory-gib 8 --weights fp16`):
    // blocks checkpointing (the first mode whose plan fits), arena off (twice the plan is over 8 GiB); minutes a step.
    { unet: 'sd15-full', side: 64, pairs: 1, rank: 8, checkpoint: 'blocks', weights: 'fp16' },
  ];
  const cells = grid.filter((c) => unets.has(c.unet));
  // each cell in a process as `npm run train` runs in (src/cli/training-process.ts)
  const env = { ...process.env, ...TRAINING_MALLOC_ENV };
  const measure = (c: PlanCell) => Number(execFileSync(join(root, 'node_modules/.bin/tsx'), ['--expose-gc', '--import', './scripts/raw-imports.mjs', import.meta.filename, '--plan-cell', JSON.stringify(c)], { cwd: root, encoding: 'utf8', env }).trim().split('\n').pop());
  let bound = { low: Infinity, high: 0 };
  let arenaHigh = 0;
  for (const c of cells) {
    const unet = readModel(readFileSync(PLAN_UNETS[c.unet].path));
    const { latentDims, contextDims } = cellGraphOptions(c, unet);
    const plan = planTrainingMemory(unet, { batch: c.pairs, latentDims, contextDims, rank: c.rank, checkpoint: c.checkpoint, weights: c.weights });
    const off = measure({ ...c, arena: false });
    // fp16 weights run with the arena off whatever the plan says (dpo-graph.ts dpoSessionOptions); the full-size cell
    // runs as the trainer would in 8 GiB, arena off
    const on = c.weights === 'fp16' || c.unet === 'sd15-full' ? undefined : measure(c);
    bound = { low: Math.min(bound.low, plan.totalBytes / off), high: Math.max(bound.high, plan.totalBytes / off) };
    if (on !== undefined) arenaHigh = Math.max(arenaHigh, on / plan.totalBytes);
    const latents = c.unet === 'embedded' ? '3×32×32 (pixels)' : latentDims.join('×');
    console.log(`| ${PLAN_UNETS[c.unet].title} | ${latents} | ${c.pairs} | ${c.rank} | ${c.checkpoint} | ${c.weights} | ${gib(plan.totalBytes)} | ${gib(off)} | ${(plan.totalBytes / off).toFixed(2)} | ${on === undefined ? '–' : gib(on)} | ${on === undefined ? '–' : (on / plan.totalBytes).toFixed(2)} |`);
  }
  console.log(`\nplanned / measured with the arena off from ${bound.low.toFixed(2)} to ${bound.high.toFixed(2)} (goal: ≥ 1 in every cell, ≤ 1.3); with it on, at most ${arenaHigh.toFixed(2)}× the plan (the trainer keeps it on only where ${ARENA_FACTOR}× the plan fits)`);
}

if (values['plan-cell']) {
  await measurePlanCell(JSON.parse(values['plan-cell']) as PlanCell);
  process.exit(0);
}
if (values['plan-check']) {
  const unets = values.unets!.split(',') as (keyof typeof PLAN_UNETS)[];
  const unknown = unets.filter((u) => !(u in PLAN_UNETS));
  if (unknown.length) throw new Error(`--unets: unknown ${unknown.join(', ')}; one or more of ${Object.keys(PLAN_UNETS).join(', ')}`);
  if (unets.includes('sd15-full') && !existsSync(FULLSIZE_SD15_UNET)) throw new Error(`--unets sd15-full needs a prepared full-size SD1.5 UNet at ${FULLSIZE_SD15_UNET}: make it with scripts/fixtures/make_sd15_fullsize.py and npm run prepare-model`);
  planCheck(new Set(unets));
  process.exit(0);
}
if (values['measure-step']) {
  const [side, pairs, checkpoint, timed, threads] = values['measure-step'].split(',');
  await measureStep(Number(side), Number(pairs), (checkpoint ?? 'off') as CheckpointMode, Number(timed ?? 0), Number(threads ?? 0));
  process.exit(0);
}
if (!values['checkpointing-only'] && !values['plans-only']) {
  await tinyFixture('SD1.5', 'fixtures/sd15/export-diffusers');
  await tinyFixture('SDXL', assembleSdxlExport());
  planVersusMeasured();
}
const sd15 = values['sd15-unet'] ?? '/work/tmp/sd15-fullsize/unet/model.onnx';
const sdxl = values['sdxl-unet'] ?? '/work/tmp/sdxl-fullsize/unet/model.onnx';
if (!values['plans-only']) checkpointing();
if (existsSync(sd15)) {
  planTable('SD1.5 (full-size UNet graph)', sd15, [77, 768], [256, 512]);
  checkpointPlanTable('SD1.5 (full-size UNet graph)', sd15, [77, 768], [256, 512]);
}
else {
  console.log(`\n(no SD1.5-sized UNet graph at ${sd15}: make one with scripts/fixtures/make_sd15_fullsize.py, or pass --sd15-unet)`);
  planTable('the tiny SD1.5 fixture', TINY_UNET, [77, 32], [64, 512], 'MiB');
}
if (existsSync(sdxl)) {
  planTable('SDXL base (full-size UNet graph)', sdxl, [77, 2048], [512, 1024]);
  checkpointPlanTable('SDXL base (full-size UNet graph)', sdxl, [77, 2048], [512, 1024]);
}
else console.log(`\n(no SDXL-sized UNet graph at ${sdxl}: make one with scripts/fixtures/make_sdxl_fullsize.py, or pass --sdxl-unet)`);

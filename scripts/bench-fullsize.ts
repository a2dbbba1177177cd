// bench:fullsize -- one full-size UNet call (SD1.5 at 512², latents [2,4,64,64]; SDXL at 1024², [2,4,128,128]) on a
// structurally exact export with seeded random weights (scripts/fixtures/make_sd15_fullsize.py / make_sdxl_fullsize.py),
// measuring session creation time, peak RSS and the call's wall time and RSS growth for the graph as exported and with
// attention query-chunked (src/onnx/passes/chunk-attention.ts), beside the activation peak the planner simulates
// (unetAttentionAt), so the plan can be checked against reality; it runs in Node on onnxruntime-node's CPU backend
// because SwiftShader, the only WebGPU adapter on these machines, is far too slow for full-size UNet steps.
// Each variant runs in its own child process, so process.resourceUsage().maxRSS is that variant's peak alone. The chunk
// plan is made at the call's own dims (the engine plans at MAX_CALL_BATCH = 4; --batch 4 measures that size).
// Run: npm run bench:fullsize -- --family sd15 [--unet /work/tmp/sd15-fullsize/unet/model.onnx] [--threads 2]
//        [--only exported|chunked] [--budget-mib 64] [--latent 64 (latent side; the family's default size otherwise)]
//        [--batch 2 (samples per call: 2 is one CFG pair, 4 the engine's MAX_CALL_BATCH)]
// --browser: the prepared full-size model through the page's own worker in headless Chromium (WebGPU), instead:
//   load time, the worker's JS heap, ORT's WASM heap, GPU bytes (ours and ORT's), uploads per α/β/ω move and
//   read-backs per generation, for plain CFG, δ only at α = 1 and dense η at α = 0.5 (scripts/fullsize-browser/run.ts).
//   SDXL's prepared directory is made from an export with stand-in encoders (scripts/fullsize-browser/standin.ts):
//     npx tsx --import ./scripts/raw-imports.mjs scripts/fullsize-browser/standin.ts --sdxl-export /work/tmp/sdxl-fullsize --out /work/tmp/sdxl-fullsize-pipeline
//     npm run prepare-model -- --onnx /work/tmp/sdxl-fullsize-pipeline [--delta-lora <make_fullsize_delta.ts output>] --out /work/tmp/sdxl-fullsize-prepared
//   npm run bench:fullsize -- --family sd15|sdxl --browser [--model /work/tmp/<family>-fullsize-prepared]
//        [--configs plain,lora,dense] [--size 64 (image side)] [--steps 1] [--stand-in <dir>] [--load-only (no generation)]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { unetAttentionAt } from '../src/engine/unet-graph.ts';
import { chunkAttention, SCORE_CHUNK_BYTES } from '../src/onnx/passes/chunk-attention.ts';
import { externalLocations, readModel, writeModel } from '../src/onnx/model-io.ts';
import { DataType, type ModelProto } from '../src/onnx/proto.ts';
import { createRandom } from '../src/train/random.ts';

const FAMILIES = {
  // encoder_hidden_states [batch, 77, context]; SDXL adds text_embeds [batch, 1280] and time_ids [batch, 6]
  sd15: { latent: 64, context: 768, extra: {} as Record<string, number[]> },
  sdxl: { latent: 128, context: 2048, extra: { text_embeds: [1280], time_ids: [6] } as Record<string, number[]> },
};
type Family = keyof typeof FAMILIES;
const DEFAULT_BATCH = 2; // one CFG pair
const GiB = 2 ** 30;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(2)} GiB`;

/** The call's input dims; the context width is the graph's own where it is static (the family's otherwise). */
function callDims(family: Family, model: ModelProto, latent?: number, batch = DEFAULT_BATCH): Record<string, number[]> {
  const f = FAMILIES[family];
  const declared = model.graph!.input!.find((v) => v.name === 'encoder_hidden_states')?.type?.tensorType?.shape?.dim?.[2]?.dimValue;
  const context = declared ? Number(declared) : f.context;
  const size = latent ?? f.latent;
  return {
    sample: [batch, 4, size, size], timestep: [batch], encoder_hidden_states: [batch, 77, context],
    ...Object.fromEntries(Object.entries(f.extra).map(([name, d]) => [name, [batch, ...d]])),
  };
}

// Seeded inputs (src/train/random.ts), the same in every child.
function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const r = createRandom(seed);
  return Float32Array.from({ length: n }, () => scale * r.normal());
}

function markdownTable(rows: string[][]): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(rows[0]), line(rows[0].map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.slice(1).map(line)].join('\n');
}

function memAvailable(): number {
  const line = readFileSync('/proc/meminfo', 'utf8').split('\n').find((l) => l.startsWith('MemAvailable:'));
  return line ? Number(line.split(/\s+/)[1]) * 1024 : Infinity;
}

interface ChildResult { createMs: number; rssBeforeCreate: number; rssAfterCreate: number; peakAfterCreate: number; runMs: number; peakAfterRun: number; outputPath: string }

/** Child: create the session from `graph` (external data beside it), run one call, report. */
async function child(graph: string, family: Family, threads: number, outputPath: string, latent?: number, batch?: number) {
  const ort = await import('onnxruntime-node');
  const peak = () => process.resourceUsage().maxRSS * 1024;
  const rssBeforeCreate = process.memoryUsage().rss;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(graph, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 });
  const createMs = performance.now() - t0;
  const rssAfterCreate = process.memoryUsage().rss;
  const peakAfterCreate = peak();
  const model = readModel(new Uint8Array(readFileSync(graph)));
  const dims = callDims(family, model, latent, batch);
  const int64Timestep = model.graph!.input!.find((v) => v.name === 'timestep')?.type?.tensorType?.elemType === DataType.INT64;
  const feeds = Object.fromEntries(Object.entries(dims).map(([name, d], i) => {
    if (name === 'timestep') return [name, int64Timestep ? new ort.Tensor('int64', BigInt64Array.from({ length: d[0] }, (_, k) => (k % 2 ? 501n : 981n)), d) : new ort.Tensor('float32', Float32Array.from({ length: d[0] }, (_, k) => (k % 2 ? 501 : 981)), d)];
    if (name === 'time_ids') return [name, new ort.Tensor('float32', Float32Array.from({ length: d[0] * d[1] }, (_, k) => [1024, 1024, 0, 0, 1024, 1024][k % 6]), d)];
    return [name, new ort.Tensor('float32', gaussian(d.reduce((a, b) => a * b, 1), 100 + i), d)];
  }));
  const t1 = performance.now();
  const out = await session.run(feeds);
  const runMs = performance.now() - t1;
  const peakAfterRun = peak();
  writeFileSync(outputPath, out[session.outputNames[0]].data as Float32Array);
  const result: ChildResult = { createMs, rssBeforeCreate, rssAfterCreate, peakAfterCreate, runMs, peakAfterRun, outputPath };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

async function main() {
  const { values } = parseArgs({
    options: {
      family: { type: 'string', default: 'sd15' }, unet: { type: 'string' }, threads: { type: 'string', default: '2' },
      only: { type: 'string' }, latent: { type: 'string' }, batch: { type: 'string' }, 'budget-mib': { type: 'string' }, child: { type: 'string' }, output: { type: 'string' },
      browser: { type: 'boolean', default: false }, model: { type: 'string' }, configs: { type: 'string', default: 'plain,lora,dense' }, size: { type: 'string', default: '64' },
      steps: { type: 'string', default: '1' }, 'stand-in': { type: 'string' }, 'load-minutes': { type: 'string', default: '30' }, 'generate-minutes': { type: 'string', default: '30' }, port: { type: 'string', default: '4191' }, 'load-only': { type: 'boolean', default: false },
    },
  });
  const family = values.family as Family;
  if (!(family in FAMILIES)) throw new Error(`--family must be sd15 or sdxl, got ${values.family}`);
  if (values.browser) {
    const { runBrowserBench } = await import('./fullsize-browser/run.ts');
    const model = values.model ?? `/work/tmp/${family}-fullsize-prepared`;
    return runBrowserBench({
      family, model, standIn: values['stand-in'] ?? `${model.replace(/\/$/, '')}-bench-standin`, configs: values.configs!.split(','),
      width: Number(values.size), steps: Number(values.steps), loadMinutes: Number(values['load-minutes']), generateMinutes: Number(values['generate-minutes']), port: Number(values.port), loadOnly: values['load-only']!,
    });
  }
  const threads = Number(values.threads);
  const latent = values.latent ? Number(values.latent) : undefined;
  const batch = values.batch ? Number(values.batch) : undefined;
  if (values.child) return child(values.child, family, threads, values.output!, latent, batch);

  const unet = values.unet ?? `/work/tmp/${family}-fullsize/unet/model.onnx`;
  if (!existsSync(unet)) throw new Error(`${unet} not found: make it with scripts/fixtures/make_${family}_fullsize.py (its header says how)`);
  const budget = values['budget-mib'] ? Number(values['budget-mib']) * 2 ** 20 : SCORE_CHUNK_BYTES;

  const t0 = performance.now();
  const model = readModel(new Uint8Array(readFileSync(unet)));
  const readMs = performance.now() - t0;
  const dims = callDims(family, model, latent, batch);
  const weightBytes = externalLocations(model).reduce((a, loc) => a + statSync(join(dirname(unet), loc)).size, 0);
  const t1 = performance.now();
  const whole = unetAttentionAt(model, dims, Infinity);
  const planned = unetAttentionAt(model, dims, budget);
  const planMs = performance.now() - t1;
  const t2 = performance.now();
  const chunkedModel: ModelProto = chunkAttention(model, planned.plan);
  // beside the weights, so the external data resolves the same way as the export's own graph
  const chunkedPath = join(dirname(unet), `model.chunked-${(budget / 2 ** 20).toFixed(0)}mib-${dims.sample.join('x')}.onnx`);
  writeFileSync(chunkedPath, writeModel(chunkedModel));
  const chunkMs = performance.now() - t2;
  const largestScores = Math.max(...planned.plan.shapes.map((s) => s.scoreBytes));
  const maxChunks = Math.max(1, ...planned.plan.chunks.values());

  console.log(`\n${family} full-size UNet: ${unet} (${(statSync(unet).size / 1e6).toFixed(1)} MB graph, ${(weightBytes / 1e9).toFixed(2)} GB external weights, ${model.graph!.node!.length} nodes)`);
  console.log(`one call: ${Object.entries(dims).map(([n, d]) => `${n} [${d.join(',')}]`).join(', ')}; onnxruntime-node CPU, ${threads} intra-op threads`);
  console.log(`plan: ${planned.plan.shapes.length} attentions (${planned.plan.unrecognised.length} unrecognised), largest scores ${gib(largestScores)}; at ${(budget / 2 ** 20).toFixed(0)} MiB per chunk ${planned.plan.chunks.size} split, up to ${maxChunks} chunks`);
  console.log(`JS side: graph read ${readMs.toFixed(0)} ms, both plans + peak simulation ${planMs.toFixed(0)} ms, chunked graph made + written ${chunkMs.toFixed(0)} ms`);

  const variants = [
    { name: 'exported', label: '(a) as exported', graph: unet, simulated: whole.activations },
    { name: 'chunked', label: `(b) attention chunked (${(budget / 2 ** 20).toFixed(0)} MiB)`, graph: chunkedPath, simulated: planned.activations },
  ].filter((v) => !values.only || v.name === values.only);

  const rows: string[][] = [];
  const outputs = new Map<string, Float32Array>();
  for (const v of variants) {
    // Weights (ORT copies them into its own buffers) + the simulated activations + ~1 GiB of runtime, against what is free.
    const need = weightBytes + v.simulated.peakBytes + GiB;
    const available = memAvailable();
    if (need > available) {
      rows.push([v.label, 'skipped', `needs ~${gib(need)}, ${gib(available)} available`, '', '', '', gib(v.simulated.peakBytes), '', '']);
      continue;
    }
    const outputPath = `/tmp/bench-fullsize-${process.pid}-${v.name}.f32`;
    const args = [...process.execArgv, process.argv[1], '--family', family, '--threads', String(threads), ...(latent ? ['--latent', String(latent)] : []), ...(batch ? ['--batch', String(batch)] : []), '--child', v.graph, '--output', outputPath];
    const t = performance.now();
    const run = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (run.status !== 0 || !line) {
      const why = run.signal ? `killed by ${run.signal}` : `exit ${run.status}`;
      console.error(`${v.label}: child failed (${why}) after ${((performance.now() - t) / 1000).toFixed(0)} s\n${run.stderr.slice(-2000)}`);
      rows.push([v.label, 'failed', why, '', '', '', gib(v.simulated.peakBytes), '', '']);
      continue;
    }
    const r = JSON.parse(line.slice(7)) as ChildResult;
    outputs.set(v.name, new Float32Array(readFileSync(r.outputPath).buffer.slice(0)));
    rmSync(r.outputPath);
    const growth = r.peakAfterRun - r.rssAfterCreate;
    rows.push([
      v.label, (r.createMs / 1000).toFixed(1), gib(r.peakAfterCreate), gib(r.rssAfterCreate - r.rssBeforeCreate), (r.runMs / 1000).toFixed(1), gib(r.peakAfterRun),
      gib(v.simulated.peakBytes), gib(growth), gib(v.simulated.largestBytes),
    ]);
  }

  rmSync(chunkedPath);
  console.log('');
  console.log(markdownTable([
    ['graph', 'session create s', 'peak RSS after create', 'RSS added by create', 'call s', 'peak RSS after call', 'simulated activation peak', 'measured call growth (peak − RSS after create)', 'largest value (simulated)'],
    ...rows,
  ]));
  const [a, b] = [outputs.get('exported'), outputs.get('chunked')];
  if (a && b) {
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(a[i]));
    }
    console.log(`\nout_sample [${dims.sample.join(',')}]: max |a − b| = ${diff.toExponential(2)} (max |a| = ${scale.toFixed(3)})`);
  }
  console.log(`\nmachine: ${gib(memAvailable())} available now; timings are one run each on a shared 2-core machine`);
}

main().catch((error) => {
  console.error(`bench:fullsize: ${error instanceof Error ? error.stack : String(error)}`);
  process.exit(1);
});

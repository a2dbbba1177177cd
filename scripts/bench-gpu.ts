// Benchmark of the WGSL weight merge (src/gpu/merge.ts): time per merge and effective bandwidth for SD1.5-sized
// attention projections, θ' = θ + α·η + β·δ with rank-8 LoRAs (the NPO re-merge on a slider move), plus a dense-η row.
//
// Run: `npm run bench:gpu` (Node, `webgpu` package; on machines without a GPU it runs on SwiftShader, whose numbers
// say nothing about real GPUs). Options: `-- --iters N`.
// How `?raw` is handled: merge.ts imports `./merge.wgsl?raw` (a Vite feature that tsx does not have), so this script
// registers a tiny Node module-loader hook (module.register, below) that serves any `*?raw` URL as
// `export default "<file text>"`, and only then imports merge.ts dynamically.
//
// Columns: "latency" = one merge submitted alone until the queue reports it done (what a slider move waits for);
// "per merge" = a batch of merges in one submit divided by its size (GPU throughput, launch overhead amortised);
// GB/s = minimal bytes moved (read W once, write W' once, read each A, B, D once) / "per merge" time.
import { register } from 'node:module';

const rawHook = `
import { readFile } from 'node:fs/promises';
export async function load(url, context, next) {
  if (!url.endsWith('?raw')) return next(url, context);
  const text = await readFile(new URL(url.slice(0, -'?raw'.length)), 'utf8');
  return { format: 'module', source: 'export default ' + JSON.stringify(text) + ';', shortCircuit: true };
}`;
register('data:text/javascript,' + encodeURIComponent(rawHook));

const { createNodeGpu } = await import('../src/gpu/node-gpu.ts');
const { acquireDevice } = await import('../src/gpu/device.ts');
const { createMergeKernels } = await import('../src/gpu/merge.ts');
const { createWeightBuffer } = await import('../src/gpu/buffers.ts');
type MergeJob = import('../src/gpu/merge.ts').MergeJob;

interface Shape {
  name: string;
  inF: number;
  outF: number;
  loras: number[]; // ranks
  dense: boolean;
}

const SHAPES: Shape[] = [
  { name: 'SD1.5 attn 320x320', inF: 320, outF: 320, loras: [8, 8], dense: false },
  { name: 'SD1.5 attn 640x640', inF: 640, outF: 640, loras: [8, 8], dense: false },
  { name: 'SD1.5 attn 1280x1280', inF: 1280, outF: 1280, loras: [8, 8], dense: false },
  { name: 'SD1.5 cross-attn k/v 768->320', inF: 768, outF: 320, loras: [8, 8], dense: false },
  { name: 'SD1.5 cross-attn k/v 768->1280', inF: 768, outF: 1280, loras: [8, 8], dense: false },
  { name: 'SD1.5 attn 1280x1280, dense eta + LoRA', inF: 1280, outF: 1280, loras: [8], dense: true },
];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const { device, adapterInfo, hasF16 } = await acquireDevice(await createNodeGpu());
const software = adapterInfo.architecture === 'swiftshader' || /swiftshader|llvmpipe|lavapipe/i.test(adapterInfo.description);
const iters = arg('iters', software ? 4 : 50);
const kernels = createMergeKernels(device);
function filled(count: number): GPUBuffer {
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = Math.sin(i * 0.37) * 0.1;
  return createWeightBuffer(device, count * 4, { data });
}

function makeJob(s: Shape): { job: MergeJob; bytes: number; buffers: GPUBuffer[] } {
  const n = s.inF * s.outF;
  const buffers: GPUBuffer[] = [filled(n), createWeightBuffer(device, n * 4)];
  const job: MergeJob = { base: buffers[0], out: buffers[1], inFeatures: s.inF, outFeatures: s.outF, layout: 'in-out', terms: [] };
  let elements = 2 * n;
  for (const rank of s.loras) {
    const down = filled(rank * s.inF);
    const up = filled(s.outF * rank);
    buffers.push(down, up);
    job.terms.push({ kind: 'lora', down, up, rank, scale: 0.8 });
    elements += rank * (s.inF + s.outF);
  }
  if (s.dense) {
    const delta = filled(n);
    buffers.push(delta);
    job.terms.push({ kind: 'dense', delta, scale: 0.5 });
    elements += n;
  }
  return { job, bytes: elements * 4, buffers };
}

async function timeMs(run: () => void): Promise<number> {
  const t0 = performance.now();
  run();
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`device: ${adapterInfo.vendor} / ${adapterInfo.architecture} ${adapterInfo.description} (shader-f16: ${hasF16})`);
if (software) console.log('software rasteriser: these timings do not predict a real GPU');
console.log(`f32, layout in-out, ${iters} iterations\n`);
const rows: string[][] = [['weight', 'terms', 'MB moved', 'latency ms', 'per merge ms', 'GB/s']];
for (const s of SHAPES) {
  const { job, bytes, buffers } = makeJob(s);
  await timeMs(() => kernels.merge(job)); // warm-up: pipeline compilation, first touch
  const latencies: number[] = [];
  for (let i = 0; i < iters; i++) latencies.push(await timeMs(() => kernels.merge(job)));
  const batch = await timeMs(() => kernels.merge(Array.from({ length: iters }, () => job)));
  const perMerge = batch / iters;
  const terms = `${s.loras.map((r) => `r${r}`).join('+')}${s.dense ? '+dense' : ''}`;
  rows.push([s.name, terms, (bytes / 1e6).toFixed(2), median(latencies).toFixed(3), perMerge.toFixed(3), (bytes / 1e6 / perMerge).toPrecision(3)]);
  buffers.forEach((b) => b.destroy());
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
kernels.destroy();
device.destroy();

// The merge benchmark itself, plain TS so it runs on any GPUDevice: Node (scripts/bench-gpu.ts) or a Chromium page
// (chromium-harness.ts). SD1.5-sized attention projections, θ' = θ + α·η + β·δ with rank-8 LoRAs (the NPO re-merge on
// a slider move), plus a dense-η row. Layout 'in-out' (the ONNX MatMul form), f32.
// Columns: "latency" = one merge submitted alone until the queue reports it done (what a slider move waits for,
// median); "per merge" = a batch of merges in one submit divided by its size (throughput, launch cost amortised);
// GB/s = minimal bytes moved (read W once, write W' once, read each A, B, D once) / "per merge" time.
import { createWeightBuffer } from './buffers.ts';
import { createMergeKernels, type MergeJob } from './merge.ts';

interface BenchShape {
  name: string;
  inF: number;
  outF: number;
  loras: number[]; // ranks
  dense: boolean;
}

export const BENCH_SHAPES: BenchShape[] = [
  { name: 'SD1.5 attn 320x320', inF: 320, outF: 320, loras: [8, 8], dense: false },
  { name: 'SD1.5 attn 640x640', inF: 640, outF: 640, loras: [8, 8], dense: false },
  { name: 'SD1.5 attn 1280x1280', inF: 1280, outF: 1280, loras: [8, 8], dense: false },
  { name: 'SD1.5 cross-attn k/v 768->320', inF: 768, outF: 320, loras: [8, 8], dense: false },
  { name: 'SD1.5 cross-attn k/v 768->1280', inF: 768, outF: 1280, loras: [8, 8], dense: false },
  { name: 'SD1.5 attn 1280x1280, dense eta + LoRA', inF: 1280, outF: 1280, loras: [8], dense: true },
];

export interface BenchRow {
  name: string;
  terms: string;
  megabytes: number;
  latencyMs: number;
  perMergeMs: number;
  gbPerS: number;
}

export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return info.architecture === 'swiftshader' || /swiftshader|llvmpipe|lavapipe/i.test(info.description);
}

export async function runMergeBench(device: GPUDevice, iters: number): Promise<BenchRow[]> {
  const kernels = createMergeKernels(device);
  const rows: BenchRow[] = [];
  for (const s of BENCH_SHAPES) {
    const { job, bytes, buffers } = makeJob(device, s);
    await timeMs(device, () => kernels.merge(job)); // warm-up: pipeline compilation, first touch
    const latencies: number[] = [];
    for (let i = 0; i < iters; i++) latencies.push(await timeMs(device, () => kernels.merge(job)));
    const batch = await timeMs(device, () => kernels.merge(Array.from({ length: iters }, () => job)));
    const perMergeMs = batch / iters;
    rows.push({
      name: s.name,
      terms: `${s.loras.map((r) => `r${r}`).join('+')}${s.dense ? '+dense' : ''}`,
      megabytes: bytes / 1e6,
      latencyMs: median(latencies),
      perMergeMs,
      gbPerS: bytes / 1e6 / perMergeMs,
    });
    buffers.forEach((b) => b.destroy());
  }
  kernels.destroy();
  return rows;
}

export function formatBench(rows: BenchRow[]): string {
  const table = [
    ['weight', 'terms', 'MB moved', 'latency ms', 'per merge ms', 'GB/s'],
    ...rows.map((r) => [r.name, r.terms, r.megabytes.toFixed(2), r.latencyMs.toFixed(3), r.perMergeMs.toFixed(3), r.gbPerS.toPrecision(3)]),
  ];
  const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
  return table.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

function filled(device: GPUDevice, count: number): GPUBuffer {
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = Math.sin(i * 0.37) * 0.1;
  return createWeightBuffer(device, count * 4, { data });
}

function makeJob(device: GPUDevice, s: BenchShape): { job: MergeJob; bytes: number; buffers: GPUBuffer[] } {
  const n = s.inF * s.outF;
  const buffers: GPUBuffer[] = [filled(device, n), createWeightBuffer(device, n * 4)];
  const job: MergeJob = { base: buffers[0], out: buffers[1], inFeatures: s.inF, outFeatures: s.outF, layout: 'in-out', terms: [] };
  let elements = 2 * n;
  for (const rank of s.loras) {
    const down = filled(device, rank * s.inF);
    const up = filled(device, s.outF * rank);
    buffers.push(down, up);
    job.terms.push({ kind: 'lora', down, up, rank, scale: 0.8 });
    elements += rank * (s.inF + s.outF);
  }
  if (s.dense) {
    const delta = filled(device, n);
    buffers.push(delta);
    job.terms.push({ kind: 'dense', delta, scale: 0.5 });
    elements += n;
  }
  return { job, bytes: elements * 4, buffers };
}

async function timeMs(device: GPUDevice, run: () => void): Promise<number> {
  const t0 = performance.now();
  run();
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

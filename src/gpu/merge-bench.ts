// The merge benchmark itself, plain TS so it runs on any GPUDevice: Node (scripts/bench-gpu.ts) or a Chromium page
// (chromium-harness.ts). SD1.5-sized attention projections, θ' = θ + α·η + β·δ with rank-8 LoRAs (the NPO re-merge on
// a slider move), plus a dense-η row. Layout 'in-out' (the ONNX MatMul form). Each shape runs with f32 weights and
// with f16 weights (θ, θ' and the dense η in binary16, LoRA factors f32 as always), in the same run.
// Columns: "latency" = one merge submitted alone until the queue reports it done (what a slider move waits for,
// median); "per merge" = a batch of merges in one submit divided by its size (throughput, launch cost amortised);
// GB/s = minimal bytes moved (read W once, write W' once, read each A, B, D once) / "per merge" time;
// "vs f32" = this row's per-merge time / the same shape's f32 time.
import { floatToHalf } from '../lora/float16.ts';
import { createWeightBuffer } from './buffers.ts';
import { bytesPerElement, type ElementType } from './element-type.ts';
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
  dtype: ElementType;
  terms: string;
  megabytes: number;
  latencyMs: number;
  perMergeMs: number;
  gbPerS: number;
  /** Per-merge time over the f32 row of the same shape. */
  vsF32: number;
}

export function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  return info.architecture === 'swiftshader' || /swiftshader|llvmpipe|lavapipe/i.test(info.description);
}

export async function runMergeBench(device: GPUDevice, iters: number): Promise<BenchRow[]> {
  const kernels = createMergeKernels(device);
  const rows: BenchRow[] = [];
  for (const s of BENCH_SHAPES) {
    for (const dtype of ['f32', 'f16'] as const) {
      const { job, bytes, buffers } = makeJob(device, s, dtype);
      await timeMs(device, () => kernels.merge(job)); // warm-up: pipeline compilation, first touch
      const latencies: number[] = [];
      for (let i = 0; i < iters; i++) latencies.push(await timeMs(device, () => kernels.merge(job)));
      const batch = await timeMs(device, () => kernels.merge(Array.from({ length: iters }, () => job)));
      const perMergeMs = batch / iters;
      const f32Row = rows.find((r) => r.name === s.name && r.dtype === 'f32');
      rows.push({
        name: s.name,
        dtype,
        terms: `${s.loras.map((r) => `r${r}`).join('+')}${s.dense ? '+dense' : ''}`,
        megabytes: bytes / 1e6,
        latencyMs: median(latencies),
        perMergeMs,
        gbPerS: bytes / 1e6 / perMergeMs,
        vsF32: f32Row ? perMergeMs / f32Row.perMergeMs : 1,
      });
      buffers.forEach((b) => b.destroy());
    }
  }
  kernels.destroy();
  return rows;
}

export function formatBench(rows: BenchRow[]): string {
  const table = [
    ['weight', 'type', 'terms', 'MB moved', 'latency ms', 'per merge ms', 'GB/s', 'vs f32'],
    ...rows.map((r) => [
      r.name, r.dtype, r.terms, r.megabytes.toFixed(2), r.latencyMs.toFixed(3), r.perMergeMs.toFixed(3), r.gbPerS.toPrecision(3), r.vsF32.toFixed(2),
    ]),
  ];
  const widths = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
  return table.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

/** A weight buffer of `count` smooth values in [-0.1, 0.1], stored as `type`. */
function filled(device: GPUDevice, count: number, type: ElementType = 'f32'): GPUBuffer {
  const values = Float32Array.from({ length: count }, (_, i) => Math.sin(i * 0.37) * 0.1);
  const data = type === 'f16' ? Uint16Array.from(values, floatToHalf) : values;
  return createWeightBuffer(device, data.byteLength, { data });
}

function makeJob(device: GPUDevice, s: BenchShape, dtype: ElementType): { job: MergeJob; bytes: number; buffers: GPUBuffer[] } {
  const n = s.inF * s.outF;
  const b = bytesPerElement(dtype);
  const buffers: GPUBuffer[] = [filled(device, n, dtype), createWeightBuffer(device, n * b)];
  const job: MergeJob = { base: buffers[0], out: buffers[1], inFeatures: s.inF, outFeatures: s.outF, layout: 'in-out', terms: [], dtype };
  let bytes = 2 * n * b;
  for (const rank of s.loras) {
    const down = filled(device, rank * s.inF);
    const up = filled(device, s.outF * rank);
    buffers.push(down, up);
    job.terms.push({ kind: 'lora', down, up, rank, scale: 0.8 });
    bytes += rank * (s.inF + s.outF) * 4;
  }
  if (s.dense) {
    const delta = filled(device, n, dtype);
    buffers.push(delta);
    job.terms.push({ kind: 'dense', delta, scale: 0.5 });
    bytes += n * b;
  }
  return { job, bytes, buffers };
}

async function timeMs(device: GPUDevice, run: () => void): Promise<number> {
  const t0 = performance.now();
  run();
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Benchmark of the sampling engine per backend (issue 6): WebGPU (our merge kernels + GPU-resident loop on ORT's
// native WebGPU EP) and WASM (CPU merge + CPU loop on ORT's WASM EP), both onnxruntime-web in Node; WebGPU through
// Dawn (`webgpu` package). Without a GPU, Dawn runs on SwiftShader: those numbers say nothing about real GPUs.
// Prints per backend: merge time and bytes moved (GB/s), per-step time of NPO-CFG vs plain CFG (ratio, same run),
// read-backs per image, and the time from an α change (and, for comparison, an ω change) to the first new step.
// The measurements live in engine-bench/measure.ts, shared with the Chromium run (`npm run bench:chromium`).
//
// Run: `npm run bench` (tiny fixture model), `npm run bench -- --model embedded` (models/), `-- --steps N`,
// `-- --repeats R` (runs per median, default 5), `-- --backend webgpu|wasm`. `*.wgsl?raw` imports are served by scripts/raw-imports.mjs (tsx --import).
import { createModelEngine } from '../src/pipelines/index.ts';
import { nodeWebGpuOrt } from '../src/worker/node-webgpu-ort.ts';
import type { GenerateParams } from '../src/worker/protocol.ts';
import { benchArgs, loadBenchModel } from './engine-bench/model.ts';
import { formatHeader, formatRow, measureEngine, type BenchBackend } from './engine-bench/measure.ts';
import { memorySource } from '../src/model/source/memory.ts';

const args = benchArgs(process.argv.slice(2));
const { manifest, files } = loadBenchModel(args.model);
const params: GenerateParams = { ...manifest.defaults, steps: args.steps };

async function runBackend(backend: BenchBackend) {
  const web = await nodeWebGpuOrt();
  const gpu = backend === 'webgpu';
  const engine = await createModelEngine(web.ort, memorySource(manifest, files), {
    sessionOptions: { executionProviders: gpu ? [{ name: 'webgpu', device: web.device } as never] : ['wasm'] },
    gpu: gpu ? { device: web.device } : undefined,
  });
  const adapter = gpu ? `${web.adapterInfo.vendor}/${web.adapterInfo.architecture}` : 'wasm ×1';
  const software = /swiftshader/i.test(web.adapterInfo.architecture);
  const measured = await measureEngine(engine, params, args.repeats);
  await engine.release();
  web.device.destroy();
  return { backend, adapter, software, ...measured };
}

console.log(formatHeader(manifest, params, args.repeats));
for (const backend of args.backends) console.log(formatRow(await runBackend(backend)).join('\n'));

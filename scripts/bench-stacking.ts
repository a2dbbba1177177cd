// What stacking the weight sets costs and saves (src/onnx/passes/stack-weight-sets.ts), per backend, on the bare
// UNet: one CFG step of one image is a batch of 2 (cond + uncond).
//   plain CFG, original graph:   1 call at batch 2, one weight set (what an app without NPO runs)
//   NPO-CFG, original graph:     2 calls at batch 1 (θ_pos, then θ_neg): how the engine ran NPO before stacking
//   NPO-CFG, stacked graph:      1 call at batch 2, samples on θ_pos and θ_neg (what the engine runs now)
//   plain CFG, stacked graph:    1 call at batch 2, both samples on θ_pos (the engine's baseline image)
// Backends: onnxruntime-node (CPU), onnxruntime-web WASM (1 thread) and WebGPU (Dawn; SwiftShader without a GPU, whose
// numbers say nothing about real GPUs). Median of N rounds after warm-up, cases interleaved per round; ratios are against plain CFG on the
// original graph, measured in the same run.
// Run: npm run bench:stacking [-- --model embedded|tiny --runs N --backend node|wasm|webgpu]
import { parseArgs } from 'node:util';
import type * as OrtCommon from 'onnxruntime-common';
import { findLoraSites } from '../src/onnx/lora-sites.ts';
import { readModel, readWeight, writeModel } from '../src/onnx/model-io.ts';
import { initializersToInputs } from '../src/onnx/passes/initializers-to-inputs.ts';
import { stackWeightSets, WEIGHT_SET_INPUT } from '../src/onnx/passes/stack-weight-sets.ts';
import { nodeWebGpuOrt } from '../src/worker/node-webgpu-ort.ts';
import { loadBenchModel } from './engine-bench/model.ts';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'embedded' }, runs: { type: 'string', default: '7' }, backend: { type: 'string' } } });
const runs = Number(values.runs);
type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;

const { manifest, files } = loadBenchModel(values.model === 'tiny' ? 'tiny' : 'embedded');
const externalData = [...files.keys()].filter((p) => p.endsWith('.data')).map((path) => ({ path, data: files.get(path)! }));
const model = readModel(files.get(manifest.unet.file)!);
const sites = findLoraSites(model);
const { model: promoted, promoted: weights } = initializersToInputs(model, sites.map((s) => s.weightName));
const stacked = stackWeightSets(promoted, sites);
const config = manifest.unet.config;
const shape = [config.inChannels, config.sampleSize, config.sampleSize];
const size = shape.reduce((a, b) => a * b, 1);
const baseWeights = weights.map((w) => readWeight(w.tensor, files).data);

async function measure(ort: Ort, sessionOptions: OrtCommon.InferenceSession.SessionOptions) {
  const plain = await ort.InferenceSession.create(writeModel(promoted), { ...sessionOptions, externalData });
  const both = await ort.InferenceSession.create(writeModel(stacked), { ...sessionOptions, externalData });
  const inputs = (batch: number) => ({
    sample: new ort.Tensor('float32', Float32Array.from({ length: batch * size }, (_, i) => Math.sin(i)), [batch, ...shape]),
    timestep: new ort.Tensor('float32', new Float32Array(batch).fill(500), [batch]),
    encoder_hidden_states: new ort.Tensor('float32', new Float32Array(batch * config.contextLength * config.crossAttentionDim).fill(0.1), [batch, config.contextLength, config.crossAttentionDim]),
  });
  const single = Object.fromEntries(weights.map((w, i) => [w.name, new ort.Tensor('float32', baseWeights[i], w.dims)]));
  const pair = Object.fromEntries(weights.map((w, i) => {
    const data = new Float32Array(2 * baseWeights[i].length);
    data.set(baseWeights[i]);
    data.set(baseWeights[i].map((v) => v * 1.01), baseWeights[i].length);
    return [w.name, new ort.Tensor('float32', data, [2, ...w.dims])];
  }));
  const sets = (ids: number[]) => ({ [WEIGHT_SET_INPUT]: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [ids.length]) });
  const cases: [string, () => Promise<unknown>][] = [
    ['plain CFG, original graph (1 call, batch 2)', () => plain.run({ ...single, ...inputs(2) })],
    ['NPO-CFG, original graph (2 calls, batch 1)', async () => { await plain.run({ ...single, ...inputs(1) }); await plain.run({ ...single, ...inputs(1) }); }],
    ['NPO-CFG, stacked graph (1 call, batch 2)', () => both.run({ ...pair, ...inputs(2), ...sets([0, 1]) })],
    ['plain CFG, stacked graph (1 call, batch 2)', () => both.run({ ...pair, ...inputs(2), ...sets([0, 0]) })],
  ];
  for (const [, step] of cases) { await step(); await step(); } // warm-up: kernels and shaders compiled outside the timing
  // Round-robin, so a load change on the machine hits every case alike; median per case.
  const times = cases.map((): number[] => []);
  for (let r = 0; r < runs; r++) {
    for (const [c, [, step]] of cases.entries()) {
      const started = performance.now();
      await step();
      times[c].push(performance.now() - started);
    }
  }
  const rows = cases.map(([name], c) => ({ name, ms: times[c].sort((a, b) => a - b)[Math.floor(runs / 2)] }));
  await plain.release();
  await both.release();
  return rows;
}

const backends = values.backend ? [values.backend] : ['node', 'wasm', 'webgpu'];
console.log(`UNet ${values.model} (${config.sampleSize}², channels ${config.blockOutChannels}, ${sites.length} LoRA sites); median of ${runs} steps`);
for (const backend of backends) {
  let rows;
  let label = backend;
  if (backend === 'node') {
    const ort = await import('onnxruntime-node');
    rows = await measure(ort, {});
    label = 'onnxruntime-node CPU';
  } else {
    const web = await nodeWebGpuOrt();
    rows = await measure(web.ort, { executionProviders: backend === 'webgpu' ? [{ name: 'webgpu', device: web.device } as never] : ['wasm'] });
    label = backend === 'webgpu' ? `onnxruntime-web WebGPU (${web.adapterInfo.vendor}/${web.adapterInfo.architecture}; SwiftShader is not predictive of a real GPU)` : 'onnxruntime-web WASM, 1 thread';
    web.device.destroy();
  }
  console.log(`\n[${label}]\n| one CFG step of one image | ms | vs plain CFG, original graph |\n|---|---|---|`);
  for (const r of rows) console.log(`| ${r.name} | ${r.ms.toFixed(2)} | ${(r.ms / rows[0].ms).toFixed(2)} |`);
}

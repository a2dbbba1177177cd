// What the GPU-resident engine costs per step and per slider move (issue 30 item 6), on the UNet alone, with the
// engine's own pieces (src/engine: touched tensors, the graph per weight mode, weights merged by our WGSL kernels):
//   plain CFG          the export as it is: one call of batch 2 (cond + uncond) per step and image;
//   NPO stacked        δ a LoRA (η none): [θ_pos; θ_neg] stacked per site, one call of batch 4 for both images;
//   NPO grouped        a dense η and the δ LoRA at α ≠ 1: θ_pos and θ_neg calls on sub-batches (3 + 1 samples);
// each on WebGPU (onnxruntime-web's WebGPU EP on Dawn in Node: SwiftShader without a GPU, whose numbers say nothing
// about real GPUs) and the same UNet on onnxruntime-node's CPU EP; plus the WebGPU re-merge after an α and a β move
// (ms, tensors and bytes written) and what crossed to the GPU per step and per move, counted on the device.
// Sizes: `--size tiny` (default) is the prepared tiny SD1.5 fixture (fixtures/sd15 through prepare-model: dense DPO η
// and the NPO-style δ LoRA) at its 64² (8×8 latents); `--size full` builds an SD1.5-sized UNet (859.5 M parameters,
// seeded random weights, src/embedded/unet.ts at SD1.5's widths) with a dense random η and a rank-8 δ on the attention
// projections, at 512² (64×64 latents): for a machine with a GPU (there, point VK_ICD_FILENAMES at its Vulkan driver).
// `--size tiny-sdxl` is the tiny SDXL fixture the same way (optimum's export, its added conditions as inputs).
// Run: npm run bench:webgpu [-- --size tiny|tiny-sdxl|full --steps N --runs N --no-cpu]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ortNode from 'onnxruntime-node';
import type * as OrtCommon from 'onnxruntime-common';
import { touchedTensors, type Offset } from '../src/engine/offsets.ts';
import { readExternals, streamUnetToGpu } from '../src/engine/unet-files.ts';
import { KEPT_CONV_BUDGET } from '../src/model/fit.ts';
import { unetGraphFor } from '../src/engine/unet-graph.ts';
import { createCpuWeights, type UnetWeights } from '../src/engine/weights-cpu.ts';
import { createGpuWeights } from '../src/engine/weights-gpu.ts';
import { createBufferTracker } from '../src/gpu/tracker.ts';
import { watchGpuTraffic } from '../src/gpu/traffic.ts';
import { writeModel } from '../src/onnx/model-io.ts';
import { negativeId, POSITIVE } from '../src/worker/weight-set-ids.ts';
import { nodeWebGpuOrt } from '../src/worker/node-webgpu-ort.ts';
import { benchUnet, type BenchSize, type BenchUnet } from './engine-bench/unet.ts';

const { values } = parseArgs({ options: { size: { type: 'string', default: 'tiny' }, steps: { type: 'string', default: '4' }, runs: { type: 'string', default: '3' }, 'no-cpu': { type: 'boolean', default: false } } });
const steps = Number(values.steps);
const runs = Number(values.runs);
type Ort = Pick<typeof OrtCommon, 'InferenceSession' | 'Tensor'>;
type Feeds = Record<string, OrtCommon.Tensor>;

if (!['tiny', 'tiny-sdxl', 'full'].includes(values.size!)) throw new Error(`--size ${values.size}: expected tiny, tiny-sdxl or full`);
const unet: BenchUnet = await benchUnet(values.size as BenchSize, join(import.meta.dirname, '..'));
// V8's baseline compiler for ORT's WebAssembly (node-webgpu-ort.ts): TurboFan spends ~90 s on it in Node 20, and the
// WebGPU EP's kernels run on the GPU, not in it.
const web = await nodeWebGpuOrt({ baselineWasm: true });
const { device } = web;
const traffic = watchGpuTraffic(device);
const adapter = `${web.adapterInfo.vendor} ${web.adapterInfo.architecture} ${web.adapterInfo.description ?? ''}`.trim();
console.log(`UNet: ${unet.title}; ${(unet.weightBytes / 2 ** 20).toFixed(1)} MiB of weights; latents [${unet.shape.join(', ')}]; WebGPU adapter: ${adapter}`);

interface Case { name: string; roles: ('eta' | 'delta')[]; ids: string[] }
const npo = negativeId(0.5, 1);
const cases: Case[] = [
  { name: 'plain CFG', roles: [], ids: [POSITIVE, POSITIVE, POSITIVE, POSITIVE] },
  { name: 'NPO stacked (δ LoRA)', roles: ['delta'], ids: [POSITIVE, POSITIVE, POSITIVE, npo] },
  { name: 'NPO grouped (dense η + δ, α 0.5)', roles: ['eta', 'delta'], ids: [POSITIVE, POSITIVE, POSITIVE, npo] },
];
const pick = (offsets: { eta: Offset; delta: Offset }, roles: Case['roles']) => ({ eta: roles.includes('eta') ? offsets.eta : undefined, delta: roles.includes('delta') ? offsets.delta : undefined });

/** A step of two images (baseline and NPO: 4 samples): median ms over `runs` rounds of `steps` steps, and kernels per step. */
async function timeSteps(ort: Ort, session: OrtCommon.InferenceSession, weights: UnetWeights, frozen: Feeds, ids: string[], gpu: boolean) {
  const calls = await weights.callsFor(ids);
  const feedsOf = calls.map((call) => ({ ...frozen, ...call.feeds, ...unet.inputs(ort, call.samples.length, gpu ? device : undefined) }));
  const step = async () => {
    for (const feeds of feedsOf) for (const t of Object.values(await session.run(feeds))) t.dispose();
    if (gpu) await device.queue.onSubmittedWorkDone();
  };
  await step(); // warm-up: pipeline compilation
  traffic.reset();
  await step();
  const kernels = traffic.dispatches;
  const uploadBytes = traffic.uploadBytes;
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const started = performance.now();
    for (let s = 0; s < steps; s++) await step();
    times.push((performance.now() - started) / steps);
  }
  return { ms: times.sort((a, b) => a - b)[Math.floor(times.length / 2)], calls: calls.length, kernels, uploadBytes };
}

const rows: string[] = [];
const row = (...cells: (string | number)[]) => rows.push(`| ${cells.join(' | ')} |`);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

const gpuOffsets = await unet.offsets(true);

/**
 * The engine's WebGPU road: every external weight streamed into our own buffer and fed as a graph input, but the
 * largest Conv weights no offset touches, kept as ORT initializers (`keepBudget` bytes of them; 0: none kept).
 */
async function gpuRoad(where: string, keepBudget: number, roadCases: Case[]) {
  const tracker = createBufferTracker(device);
  const files = await streamUnetToGpu(device, tracker, unet.source, unet.model, unet.graphPath, [], { keepBudget });
  for (const c of roadCases) {
    const touched = touchedTensors(unet.model, unet.sites, pick(gpuOffsets, c.roles));
    const graph = await files.graph(touched);
    const session = await web.ort.InferenceSession.create(writeModel(graph.model), { executionProviders: [{ name: 'webgpu', device } as never], externalData: graph.externalData, preferredOutputLocation: 'gpu-buffer' });
    const weights = await createGpuWeights(web.ort, device, tracker, touched, graph.mode, files);
    const frozen = await files.frozenFeeds(web.ort, touched);
    const gpu = await timeSteps(web.ort, session, weights, frozen, c.ids, true);
    let remerge = '–';
    if (c.roles.length) {
      const moved = async (id: string) => {
        traffic.reset();
        await weights.callsFor([POSITIVE, id]);
        await device.queue.onSubmittedWorkDone();
        const s = (weights as Awaited<ReturnType<typeof createGpuWeights>>).stats();
        return `${s.milliseconds.toFixed(0)} ms, ${s.tensors} tensors, ${kib(traffic.uploadBytes)} up`;
      };
      remerge = `α → 0.7: ${await moved(negativeId(0.7, 1))}; β → 0.5: ${await moved(negativeId(0.7, 0.5))}`;
    }
    weights.release();
    await session.release();
    const kept = files.kept();
    row(c.name, `WebGPU, ${where}${keepBudget ? ` (${kept.names.length} Conv weights kept, ${(kept.bytes / 2 ** 20).toFixed(1)} MiB)` : ''}`, graph.mode, gpu.calls, gpu.kernels, kib(gpu.uploadBytes), gpu.ms.toFixed(1), remerge);
  }
  tracker.destroyAll();
}
// The dense η touches every Conv: its case last, since a weight an offset touched stays an input.
await gpuRoad('engine road', KEPT_CONV_BUDGET, cases);
await gpuRoad('every weight an input', 0, cases.slice(0, 1));

// The same UNet with its weights left as initializers (ORT uploads them once, from its WASM heap): what the engine's
// road costs ORT per call, in kernels and time.
const externals = await readExternals(unet.source, unet.model, unet.graphPath);
const externalData = [...externals].map(([path, data]) => ({ path, data }));
{
  const session = await web.ort.InferenceSession.create(writeModel(unet.model), { executionProviders: [{ name: 'webgpu', device } as never], externalData, preferredOutputLocation: 'gpu-buffer' });
  const gpu = await timeSteps(web.ort, session, createCpuWeights(web.ort, [], 'none'), {}, cases[0].ids, true);
  await session.release();
  row('plain CFG', 'WebGPU, weights as initializers', 'none', gpu.calls, gpu.kernels, kib(gpu.uploadBytes), gpu.ms.toFixed(1), '–');
}

if (!values['no-cpu']) {
  const cpuOffsets = await unet.offsets(false);
  for (const c of cases) {
    const touched = touchedTensors(unet.model, unet.sites, pick(cpuOffsets, c.roles), externals);
    const graph = unetGraphFor(unet.model, touched);
    const session = await ortNode.InferenceSession.create(writeModel(graph.model), { externalData });
    const cpu = await timeSteps(ortNode, session, createCpuWeights(ortNode, touched, graph.mode), {}, c.ids, false);
    await session.release();
    row(c.name, 'onnxruntime-node CPU', graph.mode, cpu.calls, '–', '–', cpu.ms.toFixed(1), '–');
  }
}
console.log(`\nOne step of two images (baseline + NPO: 4 samples), median of ${runs} rounds of ${steps} steps; kernels and uploads counted on the device for one step:\n`);
console.log('| case | where | weights | UNet calls / step | kernels / step | uploaded / step | ms / step | re-merge after a move |');
console.log('|---|---|---|---|---|---|---|---|');
console.log(rows.join('\n'));
process.exit(0);

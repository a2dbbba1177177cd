// The UNet's road to the GPU (unet-files.ts) on a prepared SD1.5 with the δ LoRA only (the tiny real-exporter
// fixture, fixtures/sd15, through `npm run prepare-model`), in Node on onnxruntime-web's WebGPU EP over Dawn +
// SwiftShader. A weight fed as a graph input costs ORT's WebGPU EP a re-layout kernel per Conv on every call (an
// initializer is re-laid out once, at session creation), so the Conv weights δ does not touch stay initializers:
//   - kernels per UNet call on the engine's road equal the export's own (every weight an initializer), and feeding
//     every weight as an input costs one kernel more per Conv, counted on the device (src/gpu/traffic.ts);
//   - the engine's images equal the CPU engine's on the same files (whose images are diffusers', sd15.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as OrtCommon from 'onnxruntime-common';
import { watchGpuTraffic, type GpuTraffic } from '../gpu/traffic.ts';
import { createBufferTracker } from '../gpu/tracker.ts';
import type { PreparedManifest } from '../model/manifest.ts';
import { memorySource } from '../model/source/memory.ts';
import { externalInitializers, readModel, writeModel } from '../onnx/model-io.ts';
import { createModelEngine } from '../pipelines/index.ts';
import { prepareFixture, psnr } from '../pipelines/reference-metrics.ts';
import { nodeWebGpuOrt } from '../worker/node-webgpu-ort.ts';
import type { GenerateParams } from '../worker/protocol.ts';
import { keptConvWeights, readExternals, streamUnetToGpu } from './unet-files.ts';
import type { TouchedTensor } from './offsets.ts';

const FIXTURE = join(import.meta.dirname, '../../fixtures/sd15');
const generation = JSON.parse(readFileSync(join(FIXTURE, 'references.json'), 'utf8')).settings.generation;
const params: GenerateParams = {
  prompt: generation.prompt, negativePrompt: generation.negative_prompt, seed: generation.seed, steps: generation.num_inference_steps,
  omega: generation.guidance_scale - 1, alpha: 1, beta: 1, scheduler: 'dpm++2m', width: generation.width, height: generation.height,
};

const prepared = prepareFixture(join(FIXTURE, 'export-diffusers'), ['--delta-lora', join(FIXTURE, 'delta-diffusers.safetensors')]);
const manifest = prepared.manifest as PreparedManifest;
const source = memorySource(manifest, prepared.files);
const model = readModel(prepared.files.get(manifest.unet.file)!);
const initializers = externalInitializers(model, manifest.unet.file);
const convWeights = new Set((model.graph?.node ?? []).filter((n) => n.opType === 'Conv').map((n) => n.input![1]));
const externalConvs = initializers.filter((i) => convWeights.has(i.name));

let web: Awaited<ReturnType<typeof nodeWebGpuOrt>>;
let traffic: GpuTraffic;
const gpuErrors: string[] = [];
beforeAll(async () => {
  web = await nodeWebGpuOrt({ onUncapturedError: (e) => gpuErrors.push(e.message), baselineWasm: true });
  traffic = watchGpuTraffic(web.device);
});
afterAll(() => web?.device.destroy());

describe('keptConvWeights', () => {
  it('keeps untouched Conv weights only, the largest first, within the budget', () => {
    const bySize = [...externalConvs].sort((a, b) => b.bytes - a.bytes);
    const touched = [{ name: bySize[0].name }] as TouchedTensor[];
    const budget = bySize[1].bytes + bySize[2].bytes;
    const kept = keptConvWeights(model, initializers, touched, budget);
    expect([...kept].sort()).toEqual([bySize[1].name, bySize[2].name].sort());
    // Every Conv weight with no budget limit, none other; and none with no budget.
    expect(keptConvWeights(model, initializers, [], Infinity)).toEqual(new Set(externalConvs.map((c) => c.name)));
    expect(keptConvWeights(model, initializers, [], 0).size).toBe(0);
  });
});

describe('prepared SD1.5 with the δ LoRA only, on WebGPU', () => {
  it('runs as many kernels per UNet call as the export itself; every weight an input costs one more per Conv', async () => {
    const { ort, device } = web;
    const shape = [2, manifest.latent.channels, 8, 8];
    const feeds = (): Record<string, OrtCommon.Tensor> => ({
      sample: new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.1), shape),
      timestep: manifest.unet.inputs.timestep === 'int64' ? new ort.Tensor('int64', BigInt64Array.from([500n, 500n]), [2]) : new ort.Tensor('float32', Float32Array.from([500, 500]), [2]),
      encoder_hidden_states: new ort.Tensor('float32', new Float32Array(2 * manifest.context.length * manifest.context.dim).fill(0.01), [2, manifest.context.length, manifest.context.dim]),
    });
    const count = async (graph: Uint8Array, externalData: { path: string; data: Uint8Array }[], weights: Record<string, OrtCommon.Tensor> = {}) => {
      const session = await ort.InferenceSession.create(graph, { executionProviders: [{ name: 'webgpu', device } as never], externalData });
      await session.run({ ...weights, ...feeds() }); // pipelines compiled
      traffic.reset();
      const out = await session.run({ ...weights, ...feeds() });
      const kernels = traffic.dispatches;
      const values = (out[Object.keys(out)[0]].data as Float32Array).slice();
      await session.release();
      return { kernels, values };
    };
    const road = async (keepBudget?: number) => {
      const tracker = createBufferTracker(device);
      const files = await streamUnetToGpu(device, tracker, source, model, manifest.unet.file, [], { keepBudget });
      const graph = await files.graph([]);
      const frozen = await files.frozenFeeds(ort, []);
      const counted = await count(writeModel(graph.model), graph.externalData, frozen);
      tracker.destroyAll();
      return { ...counted, kept: files.kept().names.length };
    };
    const externals = await readExternals(source, model, manifest.unet.file);
    const exported = await count(prepared.files.get(manifest.unet.file)!, [...externals].map(([path, data]) => ({ path, data })));
    const engine = await road();
    const allInputs = await road(0);
    expect(engine.kept).toBe(externalConvs.length);
    expect(allInputs.kept).toBe(0);
    expect(engine.kernels).toBe(exported.kernels);
    expect(allInputs.kernels - exported.kernels).toBe(externalConvs.length);
    // The same kernels on the same weights: equal up to float32 rounding of the output's scale.
    const scale = Math.max(...exported.values.map(Math.abs));
    for (const values of [engine.values, allInputs.values]) {
      expect(Math.max(...values.map((v, i) => Math.abs(v - exported.values[i])))).toBeLessThan(1e-5 * scale);
    }
  });

  it('gives the CPU engine\'s images on the same files, δ changing only the NPO image', async () => {
    // Two steps: the CPU engine's images are diffusers' at the fixture's six (sd15.test.ts); here only the GPU road differs.
    const run = { ...params, steps: 2 };
    const gpu = await createModelEngine(web.ort, source, { sessionOptions: { executionProviders: [{ name: 'webgpu', device: web.device } as never] }, gpu: { device: web.device } });
    const onGpu = (await gpu.generate(run, ['baseline', 'npo'], {})).images;
    expect(gpu.stats().loop).toBe('gpu');
    await gpu.release();
    const cpu = await createModelEngine(web.ort, source, { sessionOptions: { executionProviders: ['wasm'] } });
    const onCpu = (await cpu.generate(run, ['baseline', 'npo'], {})).images;
    await cpu.release();
    for (const kind of ['baseline', 'npo'] as const) expect(psnr(onGpu.get(kind)!, onCpu.get(kind)!), kind).toBeGreaterThan(60);
    expect(psnr(onGpu.get('npo')!, onGpu.get('baseline')!)).toBeLessThan(40);
  });

  it('saw no GPU validation error', () => expect(gpuErrors).toEqual([]));
});

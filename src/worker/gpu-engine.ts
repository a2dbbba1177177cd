// The WebGPU half of the sampling engine (engine.ts): resident weights merged by our kernels (gpu-weights.ts), the
// GPU-resident loop (gpu-sampler.ts) for schedulers with a linear plan, and the CPU loop on GPU weights for the rest.
// Every buffer is owned by one tracker, whose counts the worker reports after each generation.
import type * as OrtCommon from 'onnxruntime-common';
import { sampleNpoCfg, type SampleJob, type SampleOptions } from '../diffusion/sampler.ts';
import { createScheduler } from '../diffusion/schedulers/index.ts';
import { linearPlan, type LinearPlan } from '../diffusion/schedulers/linear-step.ts';
import { createSamplerKernels } from '../gpu/sampler-kernels.ts';
import { createBufferTracker, type BufferTracker } from '../gpu/tracker.ts';
import { createGpuWeightSets, type GpuSite } from './gpu-weights.ts';
import { sampleNpoCfgGpu } from './gpu-sampler.ts';
import type { GenerationStats } from './protocol.ts';

type Ort = Pick<typeof OrtCommon, 'Tensor'>;

export interface GpuEngineInput {
  ort: Ort;
  device: GPUDevice;
  unet: OrtCommon.InferenceSession;
  sites: GpuSite[];
  shape: [number, number, number];
  contextDims: number[];
  schedulerConfig: Record<string, unknown>;
}

export type GpuSampleRequest = Omit<SampleOptions, 'denoise' | 'createScheduler'> & { scheduler: string; jobs: SampleJob[] };

export function createGpuEngine({ ort, device, unet, sites, shape, contextDims, schedulerConfig }: GpuEngineInput) {
  const tracker: BufferTracker = createBufferTracker(device);
  const kernels = createSamplerKernels(device);
  const weights = createGpuWeightSets(ort, device, tracker, sites);
  const plans = new Map<string, LinearPlan | undefined>();
  let last: Pick<GenerationStats, 'loop' | 'readBacks' | 'unetCalls'> = { loop: 'gpu', readBacks: 0, unetCalls: 0 };
  let unetCalls = 0;

  const planFor = (scheduler: string, steps: number) => {
    const key = `${scheduler}:${steps}`;
    if (!plans.has(key)) plans.set(key, linearPlan(() => createScheduler(scheduler, schedulerConfig), steps));
    return plans.get(key);
  };

  async function run(weightSets: string[], feeds: Record<string, OrtCommon.Tensor>) {
    unetCalls++;
    const out = await unet.run({ ...(await weights.feeds(weightSets)), ...feeds });
    return out.out_sample;
  }

  async function sample(request: GpuSampleRequest): Promise<Map<string, Float32Array>> {
    const plan = planFor(request.scheduler, request.steps);
    unetCalls = 0;
    if (plan) {
      const { images, readBacks } = await sampleNpoCfgGpu({
        ...request, device, kernels, tracker, plan,
        denoise: async ({ sample, timestep, context, batch, weights: ids }) => {
          const tensor = await run(ids, {
            sample: ort.Tensor.fromGpuBuffer(sample, { dataType: 'float32', dims: [batch, ...shape] }),
            timestep: new ort.Tensor('float32', timestep, [batch]),
            encoder_hidden_states: ort.Tensor.fromGpuBuffer(context, { dataType: 'float32', dims: [batch, ...contextDims] }),
          });
          return { buffer: tensor.gpuBuffer as GPUBuffer, release: () => tensor.dispose() };
        },
      });
      last = { loop: 'gpu', readBacks, unetCalls };
      return images;
    }
    // No linear plan (e.g. UniPC, clip_sample): the CPU loop, reading each UNet output back.
    let readBacks = 0;
    const images = await sampleNpoCfg({
      ...request,
      createScheduler: () => createScheduler(request.scheduler, schedulerConfig),
      denoise: async ({ sample, timestep, context, batch, weights: ids }) => {
        const tensor = await run(ids, {
          sample: new ort.Tensor('float32', sample, [batch, ...shape]),
          timestep: new ort.Tensor('float32', timestep, [batch]),
          encoder_hidden_states: new ort.Tensor('float32', context, [batch, ...contextDims]),
        });
        readBacks++;
        return (await tensor.getData(true)) as Float32Array;
      },
    });
    last = { loop: 'cpu', readBacks, unetCalls };
    return images;
  }

  return {
    replaceOffsets: weights.replace,
    sample,
    stats(): Omit<GenerationStats, 'previews'> {
      const buffers = tracker.stats();
      return { ...last, liveBuffers: buffers.live, liveBufferBytes: buffers.bytes, merge: weights.stats() };
    },
    destroy() {
      weights.destroy();
      tracker.destroyAll();
    },
  };
}

// The GPU-resident NPO-CFG loop (issue 6 item 3): the same algorithm as src/diffusion/sampler.ts, with latents,
// noise, the CFG combine and the scheduler update kept on the GPU between steps. Per step: one `gather` dispatch per
// batched branch writes c_in·x_k into the UNet's input buffers, ORT runs the UNet once per weight set on those buffers
// (Tensor.fromGpuBuffer in, 'gpu-buffer' out), and one `step` dispatch per image applies the scheduler's linear plan
// (src/diffusion/schedulers/linear-step.ts). The page gets one read-back per image, at the end.
// Initial latents and any step noise come from the same seeded CPU streams as the CPU loop, uploaded (never read
// back), so both loops see identical noise.
import { createGenerator } from '../diffusion/noise/index.ts';
import { abortError, type BranchRequest, type SampleOptions, type WeightSetId } from '../diffusion/sampler.ts';
import type { LinearPlan } from '../diffusion/schedulers/linear-step.ts';
import { readBuffer } from '../gpu/buffers.ts';
import { createParamSlots, type SamplerKernels } from '../gpu/sampler-kernels.ts';
import type { BufferTracker } from '../gpu/tracker.ts';

export interface GpuDenoiseRequest { sample: GPUBuffer; timestep: Float32Array; context: GPUBuffer; batch: number }
/** One batched UNet call on GPU buffers; `release` hands the output buffer back (after our kernels were submitted). */
export type GpuDenoiser = (weights: WeightSetId, request: GpuDenoiseRequest) => Promise<{ buffer: GPUBuffer; release(): void }>;

/** The CPU loop's options, with the UNet on GPU buffers and the scheduler as a linear plan (which fixes the steps). */
export type GpuSampleOptions = Omit<SampleOptions, 'denoise' | 'createScheduler' | 'steps'> & {
  device: GPUDevice;
  kernels: SamplerKernels;
  tracker: BufferTracker;
  plan: LinearPlan;
  denoise: GpuDenoiser;
};

const OWNER = 'sampler';

export async function sampleNpoCfgGpu(o: GpuSampleOptions): Promise<{ images: Map<string, Float32Array>; readBacks: number }> {
  const { device, tracker, plan, jobs, signal } = o;
  const size = o.shape[0] * o.shape[1] * o.shape[2];
  const ring = plan.history + 1;
  try {
    // 1–2. Initial noise from each image's own seeded stream (as sampler.ts), uploaded into ring slot 0.
    const generators = jobs.map(() => createGenerator(o.seed));
    const images = jobs.map((_, j) => {
      const x = generators[j].randn(size).map((v) => v * plan.initNoiseSigma);
      const xs = tracker.create(OWNER, ring * size * 4, { label: `x ring ${j}` });
      device.queue.writeBuffer(xs, 0, x);
      return { xs, eps: tracker.create(OWNER, ring * size * 4, { label: `ε ring ${j}` }), noise: tracker.create(OWNER, size * 4, { label: `noise ${j}` }) };
    });

    // 3. Branches grouped by weight set (one UNet call each per step), with their input and context buffers.
    const groupMap = new Map<WeightSetId, BranchRequest[]>();
    const add = (weights: WeightSetId, r: BranchRequest) => groupMap.set(weights, [...(groupMap.get(weights) ?? []), r]);
    jobs.forEach((job, j) => {
      add(o.positiveWeights, { job: j, branch: 'positive' });
      add(job.negativeWeights, { job: j, branch: 'negative' });
    });
    const contextSize = o.positiveContext.length;
    const groups = [...groupMap].map(([weights, requests], g) => {
      const context = new Float32Array(requests.length * contextSize);
      requests.forEach((r, i) => context.set(r.branch === 'positive' ? o.positiveContext : o.negativeContext, i * contextSize));
      return {
        weights, requests,
        input: tracker.create(OWNER, requests.length * size * 4, { label: `unet input ${g}` }),
        context: tracker.create(OWNER, context.byteLength, { label: `context ${g}`, data: context }),
      };
    });
    const where = jobs.map(() => ({ positive: { group: 0, index: 0 }, negative: { group: 0, index: 0 } }));
    groups.forEach((g, gi) => g.requests.forEach((r, i) => (where[r.job][r.branch] = { group: gi, index: i })));
    const totalRequests = groups.reduce((n, g) => n + g.requests.length, 0);
    const params = createParamSlots(device, totalRequests + jobs.length, (bytes, usage) => tracker.create(OWNER, bytes, { label: 'sampler params', usage }));
    // 4. Denoising loop.
    for (let k = 0; k < plan.steps.length; k++) {
      await o.betweenSteps?.();
      if (signal?.aborted) throw abortError();
      const step = plan.steps[k];
      const slot = k % ring;
      let encoder = device.createCommandEncoder({ label: `gather ${k}` });
      let pass = encoder.beginComputePass();
      let p = 0;
      for (const g of groups) {
        g.requests.forEach((r, i) => o.kernels.encodeGather(pass, params, p++, { src: images[r.job].xs, srcOffset: slot * size, dst: g.input, dstOffset: i * size, count: size, scale: step.inputScale }));
      }
      pass.end();
      device.queue.submit([encoder.finish()]);

      const outputs: { buffer: GPUBuffer; release(): void }[] = [];
      try {
        for (const g of groups) {
          const timestep = new Float32Array(g.requests.length).fill(step.timestep);
          outputs.push(await o.denoise(g.weights, { sample: g.input, timestep, context: g.context, batch: g.requests.length }));
        }
        if (signal?.aborted) throw abortError();
        encoder = device.createCommandEncoder({ label: `step ${k}` });
        pass = encoder.beginComputePass();
        jobs.forEach((_, j) => {
          let z: Float32Array | undefined;
          for (let d = 0; d < step.noiseDraws; d++) z = generators[j].randn(size);
          if (z && step.noiseCoef !== 0) device.queue.writeBuffer(images[j].noise, 0, z);
          const { positive, negative } = where[j];
          o.kernels.encodeStep(pass, params, totalRequests + j, {
            pos: outputs[positive.group].buffer, posOffset: positive.index * size,
            neg: outputs[negative.group].buffer, negOffset: negative.index * size,
            xs: images[j].xs, eps: images[j].eps, noise: images[j].noise, count: size, slot, ring, omega: o.omega,
            sampleCoefs: step.sampleCoefs, outputCoefs: step.outputCoefs, noiseCoef: step.noiseCoef,
          });
        });
        pass.end();
        device.queue.submit([encoder.finish()]);
      } finally {
        outputs.forEach((out) => out.release());
      }
      o.onStep?.(k + 1, plan.steps.length);
    }
    // 5. One read-back per image.
    const last = (plan.steps.length % ring) * size * 4;
    const result = new Map<string, Float32Array>();
    for (const [j, job] of jobs.entries()) result.set(job.key, new Float32Array(await readBuffer(device, images[j].xs, size * 4, last)));
    return { images: result, readBacks: jobs.length };
  } finally {
    await device.queue.onSubmittedWorkDone().catch(() => undefined);
    tracker.destroyOwner(OWNER);
  }
}

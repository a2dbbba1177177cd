// The GPU-resident NPO-CFG loop (issue 6 item 3): the same algorithm as src/diffusion/sampler.ts, with latents,
// noise, the CFG combine and the scheduler update kept on the GPU between steps. Per step: one `gather` dispatch per
// branch writes c_in·x_k into the UNet's input buffer, ORT runs the UNet once on it, every sample on its own stacked
// weight set (Tensor.fromGpuBuffer in, 'gpu-buffer' out), and one `step` dispatch per image applies the scheduler's
// linear plan (src/diffusion/schedulers/linear-step.ts). The page gets one read-back per image, at the end, plus the
// previews it asks for: a `preview` dispatch block-averages each image's x̂₀ (or x) into a small buffer read back.
// Initial latents and any step noise come from the same seeded CPU streams as the CPU loop, uploaded (never read
// back), so both loops see identical noise.
import { createGenerator } from '../diffusion/noise/index.ts';
import { abortError, branchRequests, previewShape, type SampleOptions, type WeightSetId } from '../diffusion/sampler.ts';
import type { LinearPlan } from '../diffusion/schedulers/linear-step.ts';
import { readBuffer } from '../gpu/buffers.ts';
import { createParamSlots, type SamplerKernels } from '../gpu/sampler-kernels.ts';
import type { BufferTracker } from '../gpu/tracker.ts';

export interface GpuDenoiseRequest { sample: GPUBuffer; timestep: Float32Array; context: GPUBuffer; batch: number; weights: WeightSetId[] }
/** One batched UNet call on GPU buffers; `release` hands the output buffer back (after our kernels were submitted). */
export type GpuDenoiser = (request: GpuDenoiseRequest) => Promise<{ buffer: GPUBuffer; release(): void }>;

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
  let finished = false;
  let shown: Promise<void> = Promise.resolve(); // previews reach the page in step order
  try {
    // 1–2. Initial noise from each image's own seeded stream (as sampler.ts), uploaded into ring slot 0.
    const generators = jobs.map(() => createGenerator(o.seed));
    const images = jobs.map((_, j) => {
      const x = generators[j].randn(size).map((v) => v * plan.initNoiseSigma);
      const xs = tracker.create(OWNER, ring * size * 4, { label: `x ring ${j}` });
      device.queue.writeBuffer(xs, 0, x);
      return { xs, eps: tracker.create(OWNER, ring * size * 4, { label: `ε ring ${j}` }), noise: tracker.create(OWNER, size * 4, { label: `noise ${j}` }) };
    });

    // 3. The batch of every step (sampler.ts): image j's positive branch at 2j, its negative branch at 2j + 1.
    const requests = branchRequests(o);
    const contextSize = o.positiveContext.length;
    const contexts = new Float32Array(requests.length * contextSize);
    requests.forEach((r, i) => contexts.set(r.branch === 'positive' ? o.positiveContext : o.negativeContext, i * contextSize));
    const input = tracker.create(OWNER, requests.length * size * 4, { label: 'unet input' });
    const context = tracker.create(OWNER, contexts.byteLength, { label: 'context', data: contexts });
    const weights = requests.map((r) => r.weights);
    const params = createParamSlots(device, requests.length + 2 * jobs.length, (bytes, usage) => tracker.create(OWNER, bytes, { label: 'sampler params', usage }));
    const { factor, ...previewDims } = previewShape(o.shape);
    const previewSize = previewDims.channels * previewDims.height * previewDims.width;
    const previewBuffers = jobs.map((_, j) => tracker.create(OWNER, previewSize * 4, { label: `preview ${j}` }));
    let previous: Promise<unknown> = Promise.resolve(); // the GPU work of the step before
    // 4. Denoising loop.
    for (let k = 0; k < plan.steps.length; k++) {
      await o.betweenSteps?.();
      if (signal?.aborted) throw abortError();
      const step = plan.steps[k];
      const slot = k % ring;
      let encoder = device.createCommandEncoder({ label: `gather ${k}` });
      let pass = encoder.beginComputePass();
      requests.forEach((r, i) => o.kernels.encodeGather(pass, params, i, { src: images[r.job].xs, srcOffset: slot * size, dst: input, dstOffset: i * size, count: size, scale: step.inputScale }));
      pass.end();
      device.queue.submit([encoder.finish()]);

      const timestep = new Float32Array(requests.length).fill(step.timestep);
      const output = await o.denoise({ sample: input, timestep, context, batch: requests.length, weights });
      const preview = k + 1 < plan.steps.length && !!o.wantPreview?.(k + 1, plan.steps.length);
      try {
        if (signal?.aborted) throw abortError();
        encoder = device.createCommandEncoder({ label: `step ${k}` });
        pass = encoder.beginComputePass();
        jobs.forEach((_, j) => {
          let z: Float32Array | undefined;
          for (let d = 0; d < step.noiseDraws; d++) z = generators[j].randn(size);
          if (z && step.noiseCoef !== 0) device.queue.writeBuffer(images[j].noise, 0, z);
          const branches = { pos: output.buffer, posOffset: 2 * j * size, neg: output.buffer, negOffset: (2 * j + 1) * size };
          // x̂₀ = a·x_k + b·ε_k must read x_k before the step overwrites its slot (ring 1); x_{k+1} is read after it.
          const encodePreview = (xSlot: number, a: number, b: number) => o.kernels.encodePreview(pass, params, requests.length + jobs.length + j, {
            ...branches, ...previewDims, factor, xs: images[j].xs, xOffset: xSlot * size, out: previewBuffers[j], omega: o.omega, a, b,
          });
          if (preview && step.preview) encodePreview(slot, step.preview.sample, step.preview.output);
          o.kernels.encodeStep(pass, params, requests.length + j, {
            ...branches, xs: images[j].xs, eps: images[j].eps, noise: images[j].noise, count: size, slot, ring, omega: o.omega,
            sampleCoefs: step.sampleCoefs, outputCoefs: step.outputCoefs, noiseCoef: step.noiseCoef,
          });
          if (preview && !step.preview) encodePreview((k + 1) % ring, 1, 0);
        });
        pass.end();
        device.queue.submit([encoder.finish()]);
      } finally {
        output.release();
      }
      if (preview) {
        // The copies are queued now, behind this step; the page gets them when the GPU gets there.
        const reads = jobs.map((_, j) => readBuffer(device, previewBuffers[j], previewSize * 4));
        shown = shown.then(async () => {
          const data = await Promise.all(reads);
          if (!finished) o.onPreview?.(k + 1, new Map(jobs.map((job, j) => [job.key, { ...previewDims, chw: new Float32Array(data[j]) }])));
        });
      }
      // Back-pressure: ORT and our kernels only queue GPU work, so without a wait the loop would run ahead of the GPU
      // by any number of steps; progress would lie and a cancel would wait for the whole backlog. Step k is queued
      // before step k − 1 is awaited, so the GPU never idles for it.
      const done = device.queue.onSubmittedWorkDone();
      await previous;
      previous = done;
      o.onStep?.(k + 1, plan.steps.length);
    }
    await shown;
    // 5. One read-back per image.
    const last = (plan.steps.length % ring) * size * 4;
    const result = new Map<string, Float32Array>();
    for (const [j, job] of jobs.entries()) result.set(job.key, new Float32Array(await readBuffer(device, images[j].xs, size * 4, last)));
    return { images: result, readBacks: jobs.length };
  } finally {
    finished = true; // a preview still on its way after a cancel or an error is dropped
    await device.queue.onSubmittedWorkDone().catch(() => undefined);
    await shown.catch(() => undefined);
    tracker.destroyOwner(OWNER);
  }
}

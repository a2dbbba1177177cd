// The GPU-resident NPO-CFG loop (DESIGN decisions 6 and 7): the same algorithm as src/diffusion/sampler.ts, with
// latents, noise, the CFG combine and the scheduler update kept on the GPU between steps, for every model family.
// Per step: one `cast` dispatch per branch writes c_in·x_k into that branch's slot of the UNet's input, in the UNet's
// element type (the engine says where: one batched input, or one per weight-set group), the UNet runs (Tensor.fromGpuBuffer in, 'gpu-buffer'
// out), and one `step` dispatch per image applies the scheduler's linear plan (src/diffusion/schedulers/linear-step.ts)
// to its two branches' outputs. At the end `finish` turns each image's final x into its result (the VAE decode, or a
// read-back): one read-back per image, plus the previews asked for, where a `preview` dispatch block-averages each
// image's x̂₀ (or x) into a small buffer read back. Initial latents and any step noise come from the same seeded CPU
// streams as the CPU loop, uploaded (never read back), so both loops see identical noise.
import { createGenerator } from '../diffusion/noise/index.ts';
import { abortError, branchRequests, previewShape, type SampleOptions } from '../diffusion/sampler.ts';
import type { LinearPlan } from '../diffusion/schedulers/linear-step.ts';
import { readBuffer } from '../gpu/buffers.ts';
import type { CastKernels } from '../gpu/cast.ts';
import type { ElementType } from '../gpu/element-type.ts';
import { createParamSlots } from '../gpu/param-slots.ts';
import type { SamplerKernels } from '../gpu/sampler-kernels.ts';
import type { BufferTracker } from '../gpu/tracker.ts';

/** A place in a GPU buffer: the buffer and an element offset (float32 elements). */
export interface GpuSlot { buffer: GPUBuffer; offset: number }

/**
 * The UNet as the loop drives it for one generation: where each batch sample's input goes, and a step's run, giving
 * each sample's float32 output. `release` hands the outputs back once the step's kernels that read them are submitted.
 */
export interface GpuUnet {
  inputs: GpuSlot[];
  /** The UNet's `sample` element type: float16 inputs are written by the cast kernel from our float32 latents. */
  inputType: ElementType;
  run(timestep: number): Promise<{ outputs: GpuSlot[]; release(): void }>;
}

/** The CPU loop's options, with the UNet on GPU buffers and the scheduler as a linear plan (which fixes the steps). */
export type GpuSampleOptions = Omit<SampleOptions, 'denoise' | 'createScheduler' | 'steps' | 'positiveContext' | 'negativeContext'> & {
  device: GPUDevice;
  kernels: SamplerKernels;
  cast: CastKernels;
  tracker: BufferTracker;
  plan: LinearPlan;
  /** Made once the batch is known: the engine lays out inputs and conditioning for these samples' branches. */
  unet: GpuUnet;
  /** Image j's result from its final x (`xs` at element `offset`, shape o.shape): a decode or a read-back. */
  finish(j: number, x: GpuSlot): Promise<Float32Array>;
};

const OWNER = 'sampler';

export async function sampleNpoCfgGpu(o: GpuSampleOptions): Promise<{ images: Map<string, Float32Array>; readBacks: number }> {
  const { device, tracker, plan, jobs, signal, unet } = o;
  const size = o.shape[0] * o.shape[1] * o.shape[2];
  const ring = plan.history + 1;
  let finished = false;
  let readBacks = 0;
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
      let encoder = device.createCommandEncoder({ label: `unet input ${k}` });
      let pass = encoder.beginComputePass();
      requests.forEach((r, i) => o.cast.encodeCast(pass, params, i, {
        src: images[r.job].xs, srcOffset: slot * size, dst: unet.inputs[i].buffer, dstOffset: unet.inputs[i].offset, count: size, from: 'f32', to: unet.inputType, scale: step.inputScale,
      }));
      pass.end();
      device.queue.submit([encoder.finish()]);

      const output = await unet.run(step.timestep);
      const preview = k + 1 < plan.steps.length && !!o.wantPreview?.(k + 1, plan.steps.length);
      try {
        if (signal?.aborted) throw abortError();
        encoder = device.createCommandEncoder({ label: `step ${k}` });
        pass = encoder.beginComputePass();
        jobs.forEach((_, j) => {
          let z: Float32Array | undefined;
          for (let d = 0; d < step.noiseDraws; d++) z = generators[j].randn(size);
          if (z && step.noiseCoef !== 0) device.queue.writeBuffer(images[j].noise, 0, z);
          const [p, n] = [output.outputs[2 * j], output.outputs[2 * j + 1]];
          const branches = { pos: p.buffer, posOffset: p.offset, neg: n.buffer, negOffset: n.offset };
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
        readBacks += jobs.length;
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
    // 5. Each image's final x to its result: one read-back per image.
    const last = (plan.steps.length % ring) * size;
    const result = new Map<string, Float32Array>();
    for (const [j, job] of jobs.entries()) {
      if (signal?.aborted) throw abortError();
      result.set(job.key, await o.finish(j, { buffer: images[j].xs, offset: last }));
      readBacks++;
    }
    return { images: result, readBacks };
  } finally {
    finished = true; // a preview still on its way after a cancel or an error is dropped
    await device.queue.onSubmittedWorkDone().catch(() => undefined);
    await shown.catch(() => undefined);
    tracker.destroyOwner(OWNER);
  }
}

// The NPO-CFG sampler (DESIGN §2, paper Eq. 10). Several images are denoised in lock-step from the same seed: each
// has a positive branch on θ_pos and a negative branch on its own weight set (θ_pos for the ordinary-CFG baseline,
// θ_neg for NPO). Every step batches all branches of all images into one model call, naming each sample's weight set,
// as diffusers' pipelines batch [uncond, cond]: the UNet takes stacked weight sets (src/onnx/passes/
// stack-weight-sets.ts), so NPO-CFG costs one call per step like ordinary CFG. Stages are numbered as in diffusers'
// StableDiffusionPipeline.__call__.
import { combineCfg } from './cfg.ts';
import { downsampleBlocks, previewFactor } from './image.ts';
import { createGenerator } from './noise/index.ts';
import type { Scheduler } from './schedulers/index.ts';

export type WeightSetId = string;

export interface SampleJob {
  key: string;
  /** Weight set for the negative/unconditional branch: the positive set (baseline) or an NPO set. */
  negativeWeights: WeightSetId;
}

/** One batched model call: `batch` samples [C,H,W] each, per-sample timestep, text context and weight set. */
export type Denoiser = (request: { sample: Float32Array; timestep: Float32Array; context: Float32Array; batch: number; weights: WeightSetId[] }) => Promise<Float32Array>;

export interface SampleOptions {
  jobs: SampleJob[];
  positiveWeights: WeightSetId;
  denoise: Denoiser;
  createScheduler: () => Scheduler;
  steps: number;
  omega: number;
  seed: number;
  /** Sample shape without batch, e.g. [3, 32, 32]. */
  shape: [number, number, number];
  /** Encoded prompt and negative prompt, one context each ([tokens, dim] flattened). */
  positiveContext: Float32Array;
  negativeContext: Float32Array;
  onStep?: (step: number, total: number) => void;
  signal?: AbortSignal;
  /**
   * Awaited before every step. A worker passes a macrotask yield here: model runs that resolve through microtasks
   * alone would otherwise keep a cancel message waiting until the whole loop ends.
   */
  betweenSteps?: () => Promise<void>;
  /** Asked after every step but the last whether to make previews now (the worker throttles them by time). */
  wantPreview?: (step: number, total: number) => boolean;
  /** Low-resolution images of each job's current x̂₀ estimate (its sample where the scheduler gives no x̂₀). */
  onPreview?: (step: number, previews: Map<string, Preview>) => void;
}

/** A [channels, height, width] image at preview resolution (image.ts previewFactor). */
export interface Preview { chw: Float32Array; channels: number; height: number; width: number }

/** The preview size of samples of `shape` ([C, H, W]) and the block factor that gives it. */
export function previewShape(shape: readonly [number, number, number]) {
  const factor = previewFactor(shape[1], shape[2]);
  return { factor, channels: shape[0], height: Math.floor(shape[1] / factor), width: Math.floor(shape[2] / factor) };
}

/** One branch of one image in a batched model call. */
export interface BranchRequest { job: number; branch: 'positive' | 'negative'; weights: WeightSetId }

/** The batch of every step: image j's positive branch at 2j, its negative branch at 2j + 1. */
export function branchRequests(options: Pick<SampleOptions, 'jobs' | 'positiveWeights'>): BranchRequest[] {
  return options.jobs.flatMap((job, j) => [
    { job: j, branch: 'positive' as const, weights: options.positiveWeights },
    { job: j, branch: 'negative' as const, weights: job.negativeWeights },
  ]);
}

export async function sampleNpoCfg(options: SampleOptions): Promise<Map<string, Float32Array>> {
  const { jobs, shape, signal } = options;
  const size = shape[0] * shape[1] * shape[2];

  // 1. Timesteps: one scheduler per image, since multistep schedulers keep a history.
  const schedulers = jobs.map(() => options.createScheduler());
  schedulers.forEach((s) => s.setTimesteps(options.steps));
  const timesteps = schedulers[0].timesteps;

  // 2. Initial noise: the same seed for every image, so the images differ only by their weights. Each image keeps its
  //    own stream for the schedulers that add noise during sampling, like a diffusers generator would.
  const generators = jobs.map(() => createGenerator(options.seed));
  const latents = generators.map((generator, j) => {
    const x = generator.randn(size);
    const sigma = schedulers[j].initNoiseSigma;
    for (let i = 0; i < size; i++) x[i] *= sigma;
    return x;
  });

  // 3. The batch: [positive, negative] per image, each with its weight set.
  const requests = branchRequests(options);

  // 4. Denoising loop.
  for (let step = 0; step < timesteps.length; step++) {
    await options.betweenSteps?.();
    if (signal?.aborted) throw abortError();
    const t = timesteps[step];
    const inputs = latents.map((x, j) => schedulers[j].scaleModelInput(x, t));
    const result = await options.denoise(batchRequests(requests, inputs, t, options, size));
    if (signal?.aborted) throw abortError();
    const estimates = jobs.map((_, j) => {
      const [positive, negative] = [2 * j, 2 * j + 1].map((i) => result.subarray(i * size, (i + 1) * size));
      const guided = combineCfg(positive, negative, options.omega);
      const { prevSample, predOriginalSample } = schedulers[j].step(guided, t, latents[j], { generator: generators[j] });
      latents[j] = prevSample;
      return predOriginalSample ?? prevSample;
    });
    options.onStep?.(step + 1, timesteps.length);
    if (step + 1 < timesteps.length && options.wantPreview?.(step + 1, timesteps.length)) {
      const { factor, ...dims } = previewShape(shape);
      options.onPreview?.(step + 1, new Map(jobs.map((job, j) => [job.key, { ...dims, chw: downsampleBlocks(estimates[j], ...shape, factor) }])));
    }
  }
  return new Map(jobs.map((job, j) => [job.key, latents[j]]));
}

function batchRequests(requests: BranchRequest[], inputs: Float32Array[], t: number, options: SampleOptions, size: number) {
  const contextSize = options.positiveContext.length;
  const sample = new Float32Array(requests.length * size);
  const context = new Float32Array(requests.length * contextSize);
  requests.forEach((r, i) => {
    sample.set(inputs[r.job], i * size);
    context.set(r.branch === 'positive' ? options.positiveContext : options.negativeContext, i * contextSize);
  });
  return { sample, timestep: new Float32Array(requests.length).fill(t), context, batch: requests.length, weights: requests.map((r) => r.weights) };
}

export function abortError(): Error {
  return new DOMException('sampling was cancelled', 'AbortError');
}

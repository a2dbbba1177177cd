// Per-step cost of NPO against plain CFG on one backend (onnxruntime-node, CPU), for bench:sdxl: the tiny SDXL fixture
// (fixtures/sdxl) prepared as a user would, then the same generation timed as plain CFG (θ_pos on both branches), NPO
// with a LoRA δ (stacked [θ_pos; θ_neg] sites: one UNet call per step) and NPO with a dense η at α ≠ 1 (θ_pos and θ_neg
// differ everywhere: one call per weight set, two per step). A step's time is the median of the gaps between the
// sampler's onStep callbacks (text encoders and the VAE excluded). The fixture is tiny (64², 8/16/16 channels), so the
// ratios say what NPO's extra work costs around the same UNet, not how long a real SDXL step takes.
import * as ort from 'onnxruntime-node';
import { join } from 'node:path';
import { assembleSdxlExport, SDXL_FIXTURE } from './fixtures/sdxl-export.ts';
import { prepareFixture } from '../src/pipelines/reference-metrics.ts';
import { createModelEngine } from '../src/pipelines/index.ts';
import type { GenerateParams, ImageKind } from '../src/worker/protocol.ts';
import { memorySource } from '../src/model/source/memory.ts';

export interface StepCost { label: string; msPerStep: number; unetCalls: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeSteps(args: string[], images: ImageKind[], params: GenerateParams): Promise<{ ms: number; calls: number }> {
  const model = prepareFixture(assembleSdxlExport(), args);
  const engine = await createModelEngine(ort, memorySource(model.manifest, model.files), { sessionOptions: { intraOpNumThreads: 1, logSeverityLevel: 3 } });
  try {
    await engine.generate({ ...params, steps: 2 }, images, {}); // warm-up: session and weight-set creation
    const marks: number[] = [];
    await engine.generate(params, images, { onStep: () => marks.push(performance.now()) });
    return { ms: median(marks.slice(1).map((t, i) => t - marks[i])), calls: engine.stats().unetCalls / params.steps };
  } finally {
    await engine.release();
  }
}

export async function sdxlStepCosts(steps = 20): Promise<StepCost[]> {
  const params: GenerateParams = {
    prompt: 'a photo of an astronaut riding a horse on mars', negativePrompt: '', seed: 42, steps, omega: 4, alpha: 1, beta: 1,
    scheduler: 'euler', width: 64, height: 64,
  };
  const delta = ['--delta-lora', join(SDXL_FIXTURE, 'delta-diffusers.safetensors')];
  const dense = ['--eta-unet', join(SDXL_FIXTURE, 'dpo-unet'), ...delta];
  const cases: [string, string[], ImageKind, Partial<GenerateParams>][] = [
    ['plain CFG (θ_pos on both branches)', delta, 'baseline', {}],
    ['NPO, LoRA δ, α = 1 (stacked sites, 1 call)', delta, 'npo', {}],
    ['plain CFG, dense η (DPO UNet)', dense, 'baseline', {}],
    ['NPO, dense η, α = 0.5 (2 calls)', dense, 'npo', { alpha: 0.5 }],
  ];
  const out: StepCost[] = [];
  for (const [label, args, kind, extra] of cases) {
    const { ms, calls } = await timeSteps(args, [kind], { ...params, ...extra });
    out.push({ label, msPerStep: ms, unetCalls: calls });
  }
  return out;
}

// SD1.5 memory and re-merge benchmark: for a structurally exact SD1.5 UNet (the parameter list diffusers builds from
// SD1.5's config, src/model/unet-params.ts, 859,520,964 parameters), the bytes of weights resident per NPO case
// (src/model/npo-memory.ts) in fp16 and fp32, then the time our WGSL merge kernels (src/gpu/merge.ts) take to
// re-merge θ_neg after a slider move, on Node's Dawn. The re-merge runs on a representative subset of SD1.5's
// layers (one transformer block and one ResNet block per width 320/640/1280, real shapes) and is extrapolated to the
// whole UNet by bytes. Without a GPU Dawn runs on SwiftShader (a CPU rasteriser): its times do not predict a GPU.
//
// Run: `npm run bench:sd15` (`-- --iters N`: the median of N timed runs, default 1; `-- --memory-only`).
// Weights are zeros: the timing does not depend on their values.
export {};

const { SD15_UNET_CONFIG, numel, unetParameters } = await import('../src/model/unet-params.ts');
const { residentTable, textTable } = await import('../src/model/npo-memory.ts');
type UnetParam = import('../src/model/unet-params.ts').UnetParam;
type MergeJob = import('../src/gpu/merge.ts').MergeJob;

const argv = process.argv.slice(2);
const iters = argv.includes('--iters') ? Number(argv[argv.indexOf('--iters') + 1]) : 1;
if (!Number.isInteger(iters) || iters < 1) throw new Error(`--iters wants a positive integer, got ${argv[argv.indexOf('--iters') + 1]}`);
const params = unetParameters(SD15_UNET_CONFIG);
const total = params.reduce((a, p) => a + numel(p.shape), 0);

const table = textTable;

console.log(`\nSD1.5 UNet (diffusers UNet2DConditionModel, SD1.5 config): ${params.length} tensors, ${total.toLocaleString('en-US')} parameters`);
console.log('Weights resident on the device (UNet only; activations, text encoder and VAE come on top):\n');
console.log(residentTable(params));
console.log('δ sites: the 128 attention projections (to_q/to_k/to_v/to_out.0), where the released NPO LoRA sits; '
  + 'δ r8 / η r8: a rank-8 LoRA\'s factors (1,594,368 parameters, 6.4 MB in fp32).');
if (argv.includes('--memory-only')) process.exit(0);

// --- re-merge timing on a subset ---------------------------------------------------------------------------------
const SUBSET_PREFIXES = [
  'down_blocks.0.attentions.0.', 'down_blocks.0.resnets.0.', // 320
  'down_blocks.1.attentions.0.', 'down_blocks.1.resnets.1.', // 640
  'mid_block.attentions.0.', 'mid_block.resnets.0.', // 1280
];
const isMatrix = (p: UnetParam) => p.role === 'attn-proj' || p.role === 'linear' || p.role === 'conv';
const subset = params.filter((p) => isMatrix(p) && SUBSET_PREFIXES.some((s) => p.name.startsWith(s)));
const sitesAll = params.filter((p) => p.role === 'attn-proj');
const sitesSubset = subset.filter((p) => p.role === 'attn-proj');
const sum = (ps: UnetParam[]) => ps.reduce((a, p) => a + numel(p.shape), 0);

const { createNodeGpu } = await import('../src/gpu/node-gpu.ts');
const { acquireDevice } = await import('../src/gpu/device.ts');
const { createWeightBuffer } = await import('../src/gpu/buffers.ts');
const { createMergeKernels } = await import('../src/gpu/merge.ts');
const { isSoftwareAdapter } = await import('../src/gpu/merge-bench.ts');

const { loadavg, cpus } = await import('node:os');
const { device, adapterInfo } = await acquireDevice(await createNodeGpu());
const software = isSoftwareAdapter(adapterInfo);
const kernels = createMergeKernels(device);
const buffers: GPUBuffer[] = [];
type Dtype = 'f32' | 'f16';
const bytesOf = (dtype: Dtype) => (dtype === 'f16' ? 2 : 4);
let dtype: Dtype = 'f32';
/** A weight-sized buffer of the current dtype; LoRA factors are always f32 (merge.ts). */
const buffer = (elements: number, type: Dtype = dtype) => {
  const b = createWeightBuffer(device, elements * bytesOf(type));
  buffers.push(b);
  return b;
};

/** [in, out] as the ONNX export stores Linear weights; convs as [out, in·k·k] (a dense term is elementwise). */
function dims(p: UnetParam): { inFeatures: number; outFeatures: number; layout: 'in-out' | 'out-in' } {
  if (p.role === 'conv') return { inFeatures: numel(p.shape.slice(1)), outFeatures: p.shape[0], layout: 'out-in' };
  return { inFeatures: p.shape[1], outFeatures: p.shape[0], layout: 'in-out' };
}

/** (b) β moved: θ_neg = θ_pos + β·δ at each δ site of the subset. */
function betaJobs(rank: number): MergeJob[] {
  return sitesSubset.map((p) => {
    const d = dims(p);
    const n = numel(p.shape);
    return { base: buffer(n), out: buffer(n), ...d, dtype, terms: [{ kind: 'lora', down: buffer(rank * d.inFeatures, 'f32'), up: buffer(d.outFeatures * rank, 'f32'), rank, scale: 0.9 }] };
  });
}

/** (c1) α moved: θ_neg = θ_pos + (α − 1)·η + β·δ at every weight of the subset (δ only at its sites). */
function alphaJobs(rank: number): MergeJob[] {
  return subset.map((p) => {
    const d = dims(p);
    const n = numel(p.shape);
    const job: MergeJob = { base: buffer(n), out: buffer(n), ...d, dtype, terms: [{ kind: 'dense', delta: buffer(n), scale: -0.5 }] };
    if (p.role === 'attn-proj') job.terms.push({ kind: 'lora', down: buffer(rank * d.inFeatures, 'f32'), up: buffer(d.outFeatures * rank, 'f32'), rank, scale: 0.9 });
    return job;
  });
}

async function time(jobs: MergeJob[]): Promise<number> {
  const once = async (batch: MergeJob[]) => {
    const t0 = performance.now();
    kernels.merge(batch);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await once(jobs.slice(0, 1)); // pipeline compilation (a whole warm-up pass would double a minute-long run)
  const runs: number[] = [];
  for (let i = 0; i < iters; i++) runs.push(await once(jobs));
  return runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)];
}

// arrays: the weight-sized arrays a re-merge reads or writes per parameter (θ_pos, θ_neg; + η when dense).
const cases = [
  { name: '(b) β change: θ_neg at the δ sites', jobs: () => betaJobs(8), arrays: 2, subsetParams: sum(sitesSubset), wholeParams: sum(sitesAll) },
  { name: '(c1) α change: θ_neg everywhere (dense η)', jobs: () => alphaJobs(8), arrays: 3, subsetParams: sum(subset), wholeParams: total },
];
const adapter = `${adapterInfo.vendor} / ${adapterInfo.architecture} ${adapterInfo.description}`.trim();
console.log(`\nRe-merge of θ_neg with src/gpu/merge.ts on Node's Dawn: ${adapter} (fp16 rows: binary16 in u32 words, no shader-f16 needed), median of ${iters} run(s)`
  + (software ? '\n(SwiftShader, a CPU rasteriser on this machine: the times say nothing about a real GPU)' : ''));
console.log(`Subset: one transformer block and one ResNet block per width (${SUBSET_PREFIXES.join(', ')}), real shapes.`);
console.log('Whole UNet = subset time × whole bytes / subset bytes. "GB moved": weight-sized arrays read and written.\n');
const rows = [['re-merge', 'dtype', 'subset params', 'subset ms', 'GB/s', 'whole UNet params', 'whole GB moved', 'whole UNet ms']];
for (const c of cases) {
  for (const d of ['f32', 'f16'] as Dtype[]) {
    dtype = d;
    const ms = await time(c.jobs());
    const subsetGb = (c.subsetParams * c.arrays * bytesOf(d)) / 1e9;
    const wholeGb = (c.wholeParams * c.arrays * bytesOf(d)) / 1e9;
    rows.push([c.name, d, c.subsetParams.toLocaleString('en-US'), ms.toFixed(0), (subsetGb / (ms / 1e3)).toFixed(2),
      c.wholeParams.toLocaleString('en-US'), wholeGb.toFixed(2), (ms * c.wholeParams / c.subsetParams).toFixed(0)]);
    buffers.splice(0).forEach((b) => b.destroy());
  }
}
console.log(table(rows));
console.log(`\nLoad average after the run: ${loadavg()[0].toFixed(1)} on ${cpus().length} cores (SwiftShader's times scale with the CPU it gets).`);
kernels.destroy();
device.destroy();

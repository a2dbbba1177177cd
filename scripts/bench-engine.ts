// Benchmark of the sampling engine per backend (issue 6): WebGPU (our merge kernels + GPU-resident loop on ORT's
// native WebGPU EP) and WASM (CPU merge + CPU loop on ORT's WASM EP), both onnxruntime-web in Node; WebGPU through
// Dawn (`webgpu` package). Without a GPU, Dawn runs on SwiftShader: those numbers say nothing about real GPUs.
// Prints per backend: merge time and bytes moved (GB/s), per-step time of NPO-CFG vs plain CFG (ratio, same run),
// read-backs per image, and the time from an α change (and, for comparison, an ω change) to the first new step.
//
// Run: `npm run bench` (tiny fixture model), `npm run bench -- --model embedded` (models/), `-- --steps N`,
// `-- --backend webgpu|wasm`. `*.wgsl?raw` imports are served by scripts/raw-imports.mjs (tsx --import).
export {};

const { readFileSync } = await import('node:fs');
const { join } = await import('node:path');
const { createEngine } = await import('../src/worker/engine.ts');
const { nodeWebGpuOrt } = await import('../src/worker/node-webgpu-ort.ts');
const { buildTinyModel } = await import('../src/worker/tiny-model.ts');
const { parseManifest } = await import('../src/model/manifest.ts');
const { findLoraSites } = await import('../src/onnx/lora-sites.ts');
const { readModel, readWeight } = await import('../src/onnx/model-io.ts');
const { initializersToInputs } = await import('../src/onnx/passes/initializers-to-inputs.ts');
const { loraDeltaWeight, parseLora } = await import('../src/lora/formats.ts');
const { mergeWeight } = await import('../src/model/merge.ts');
type Engine = import('../src/worker/engine.ts').Engine;
type GenerateParams = import('../src/worker/protocol.ts').GenerateParams;

const argv = process.argv.slice(2);
const arg = (name: string) => (argv.indexOf(name) >= 0 ? argv[argv.indexOf(name) + 1] : undefined);
const steps = Number(arg('--steps') ?? 4);
const backends = (arg('--backend') ? [arg('--backend')] : ['webgpu', 'wasm']) as ('webgpu' | 'wasm')[];

function loadModel() {
  if (arg('--model') !== 'embedded') return buildTinyModel();
  const dir = join(import.meta.dirname, '../models');
  const manifest = parseManifest(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  return { manifest, files: new Map(manifest.files.map((f) => [f.path, new Uint8Array(readFileSync(join(dir, f.path)))])) };
}
const { manifest, files } = loadModel();
const params: GenerateParams = { ...manifest.defaults, steps };

/** The CPU path's merge, as engine.ts does it: θ + α·η + β·δ over dense deltas of every LoRA site. */
function cpuMergeBench(iterations = 5) {
  const model = readModel(files.get(manifest.unet.file)!);
  const sites = findLoraSites(model);
  const { promoted } = initializersToInputs(model, sites.map((s) => s.weightName));
  const targets = sites.map((s) => ({ modulePath: s.modulePath, inFeatures: s.inFeatures, outFeatures: s.outFeatures }));
  const lora = (f?: { file: string }) => (f ? parseLora(files.get(f.file)!, targets) : undefined);
  const [eta, delta] = [lora(manifest.loras.eta), lora(manifest.loras.delta)];
  const layers = sites.map((site, i) => {
    const dense = (set: typeof eta) => { const e = set?.entries.get(site.modulePath); return e ? loraDeltaWeight(e, site.layout) : undefined; };
    return { base: readWeight(promoted[i].tensor, files).data, eta: dense(eta), delta: dense(delta) };
  });
  const started = performance.now();
  for (let r = 0; r < iterations; r++) {
    for (const l of layers) mergeWeight(l.base, [...(l.eta ? [{ delta: l.eta, coefficient: 0.5 }] : []), ...(l.delta ? [{ delta: l.delta, coefficient: 1 }] : [])]);
  }
  const milliseconds = (performance.now() - started) / iterations;
  // Read θ, η, δ (dense), write θ': four weight-sized arrays per site.
  const bytes = layers.reduce((s, l) => s + l.base.byteLength * (2 + (l.eta ? 1 : 0) + (l.delta ? 1 : 0)), 0);
  return { milliseconds, bytes };
}

/** Per-step times (ms) of one generation, from onStep timestamps; the first step (warm-up effects) is dropped. */
async function stepTimes(engine: Engine, p: GenerateParams, images: ('baseline' | 'npo')[]) {
  const marks: number[] = [performance.now()];
  await engine.generate(p, images, { onStep: () => void marks.push(performance.now()) });
  const times = marks.slice(1).map((t, i) => t - marks[i]);
  return { first: times[0], steady: times.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, times.length - 1) };
}

async function timeToFirstStep(engine: Engine, p: GenerateParams) {
  const started = performance.now();
  let first = 0;
  await engine.generate(p, ['npo'], { onStep: (step) => { if (step === 1) first = performance.now() - started; } });
  return first;
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;
const gbps = (bytes: number, ms: number) => `${(bytes / 1e9 / (ms / 1e3)).toFixed(2)} GB/s`;

console.log(`model ${manifest.name} (${manifest.unet.config.sampleSize}², channels ${manifest.unet.config.blockOutChannels}), ${steps} steps, scheduler ${params.scheduler}`);
for (const backend of backends) {
  const web = await nodeWebGpuOrt();
  const gpu = backend === 'webgpu';
  const engine = await createEngine(web.ort, manifest, files, {
    sessionOptions: { executionProviders: gpu ? [{ name: 'webgpu', device: web.device } as never] : ['wasm'] },
    gpu: gpu ? { device: web.device } : undefined,
  });
  const adapter = gpu ? `${web.adapterInfo.vendor}/${web.adapterInfo.architecture}` : 'wasm ×1';
  // Warm-up: both batch sizes, so shader compilation (seconds per pipeline on SwiftShader) is out of the numbers.
  await engine.generate({ ...params, steps: 2 }, ['baseline', 'npo'], {});
  await engine.generate({ ...params, steps: 2 }, ['baseline'], {});
  await engine.generate({ ...params, steps: 2 }, ['npo'], {});

  let merge: { milliseconds: number; bytes: number };
  if (gpu) {
    const ms: number[] = [];
    for (let r = 0; r < 5; r++) { await engine.generate({ ...params, steps: 1, alpha: 0.1 + r / 10 }, ['npo'], {}); ms.push(engine.stats().merge!.milliseconds); }
    merge = { milliseconds: ms.reduce((a, b) => a + b, 0) / ms.length, bytes: engine.stats().merge!.bytes };
  } else merge = cpuMergeBench();

  const cfg = await stepTimes(engine, params, ['baseline']);
  const npo = await stepTimes(engine, params, ['npo']);
  await engine.generate(params, ['baseline', 'npo'], {});
  const { readBacks, loop } = engine.stats();
  await timeToFirstStep(engine, { ...params, alpha: 0.9 });
  const alphaMove = await timeToFirstStep(engine, { ...params, alpha: 0.35 });
  const omegaMove = await timeToFirstStep(engine, { ...params, alpha: 0.35, omega: params.omega + 1 });
  console.log(`\n[${backend}] ${adapter}${gpu && /swiftshader/i.test(web.adapterInfo.architecture) ? '  (software rasteriser: not predictive of a real GPU)' : ''}`);
  console.log(`  merge θ_neg = θ + α·η + β·δ: ${fmt(merge.milliseconds)}, ${(merge.bytes / 1e6).toFixed(2)} MB moved, ${gbps(merge.bytes, merge.milliseconds)}${gpu ? ' (LoRA factors; wall time incl. submit + onSubmittedWorkDone)' : ' (dense ΔW on the CPU)'}`);
  console.log(`  per step: plain CFG ${fmt(cfg.steady)}, NPO-CFG ${fmt(npo.steady)}, ratio ${(npo.steady / cfg.steady).toFixed(2)} (first steps ${fmt(cfg.first)} / ${fmt(npo.first)})`);
  const reads = gpu ? `${readBacks / 2}${loop === 'cpu' ? ' (CPU loop: every UNet output is read back)' : ''}` : 'none (no GPU; everything in wasm memory)';
  console.log(`  loop: ${loop}; GPU→CPU read-backs per image: ${reads}`);
  console.log(`  α change → first new step: ${fmt(alphaMove)} (ω change: ${fmt(omegaMove)})`);
  await engine.release();
  web.device.destroy();
}

// Benchmark of the WGSL weight merge (src/gpu/merge-bench.ts has the shapes and the column definitions), per backend:
// Node's Dawn (`webgpu` package) and headless Chromium. Without a GPU both run on SwiftShader, whose numbers say
// nothing about real GPUs; on a machine with a GPU, Chromium uses it (Dawn-in-Node needs a Vulkan driver for it).
//
// Run: `npm run bench:gpu` (both), `npm run bench:gpu -- --node` or `-- --chromium` (one), `-- --iters N`.
// `*.wgsl?raw` imports are served by scripts/raw-imports.mjs (the npm script passes it to tsx with --import). The
// Chromium side is bundled by esbuild with an equivalent plugin (src/gpu/chromium-page.ts).
export {};

const { createNodeGpu } = await import('../src/gpu/node-gpu.ts');
const { acquireDevice } = await import('../src/gpu/device.ts');
const { formatBench, isSoftwareAdapter, runMergeBench } = await import('../src/gpu/merge-bench.ts');
const { withHarnessPage } = await import('../src/gpu/chromium-page.ts');
type MergeHarness = import('../src/gpu/chromium-harness.ts').MergeHarness;

const argv = process.argv.slice(2);
const itersArg = argv.indexOf('--iters') >= 0 ? Number(argv[argv.indexOf('--iters') + 1]) : undefined;
const only = argv.includes('--node') ? 'node' : argv.includes('--chromium') ? 'chromium' : undefined;
const note = (software: boolean) => (software ? '  (software rasteriser: not predictive of a real GPU)' : '');

if (only !== 'chromium') {
  const { device, adapterInfo, hasF16 } = await acquireDevice(await createNodeGpu());
  const software = isSoftwareAdapter(adapterInfo);
  const iters = itersArg ?? (software ? 4 : 50);
  console.log(`\n[node/dawn] ${adapterInfo.vendor} / ${adapterInfo.architecture} ${adapterInfo.description}, shader-f16: ${hasF16} (the f16 rows need none), ${iters} iterations${note(software)}`);
  console.log(formatBench(await runMergeBench(device, iters)));
  device.destroy();
}
if (only !== 'node') {
  await withHarnessPage(async (page, version) => {
    const report = await page.evaluate(
      (iters) => (globalThis as unknown as { mergeHarness: MergeHarness }).mergeHarness.runBench(iters),
      itersArg,
    );
    console.log(`\n[chromium ${version}] ${report.adapter}${note(report.software)}`);
    console.log(formatBench(report.rows));
  });
}

// What it costs to verify model files as they stream (incremental SHA-256, src/util/sha256.ts) and to upload weights
// into GPU buffers (src/gpu/upload.ts), in Node (Dawn) and in headless Chromium; table rows in
// model-source-bench/measure.ts. Without a GPU both WebGPU columns are SwiftShader's (a software rasteriser): the
// hashing rows are what matter here, the upload rows say nothing about a real GPU.
// Run: `npm run bench:model-source` (both), `-- --node` or `-- --chromium` (one), `-- --mb N` (default 128),
// `-- --repeats R` (default 3).
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { acquireDevice } from '../src/gpu/device.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { withHarnessPage } from '../src/gpu/chromium-page.ts';
import { formatRows, measureModelSource } from './model-source-bench/measure.ts';
import type { ModelSourceBench } from './model-source-bench/page.ts';

const argv = process.argv.slice(2);
const option = (name: string, fallback: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : fallback);
const settings = { mb: option('--mb', 128), repeats: option('--repeats', 3) };
const only = argv.includes('--node') ? 'node' : argv.includes('--chromium') ? 'chromium' : undefined;
console.log(`${settings.mb} MiB, best of ${settings.repeats}; 's @3.4 GB': the time scaled to SD1.5 fp32's 3.4 GB of UNet weights; MB/CPU-s: per second of the process's CPU time (Node)`);

if (only !== 'chromium') {
  const { device, adapterInfo } = await acquireDevice(await createNodeGpu());
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  const extraDigests = { 'SHA-256, node:crypto (OpenSSL), streaming': (bytes: Uint8Array) => createHash('sha256').update(bytes).digest() };
  const rows = await measureModelSource({ ...settings, device, extraDigests, cpuMs });
  console.log(formatRows(`[node ${process.version}, dawn: ${adapterInfo.vendor} / ${adapterInfo.architecture}]`, rows));
  device.destroy();
}
if (only !== 'node') {
  await withHarnessPage(async (page, version) => {
    const report = await page.evaluate((s) => (globalThis as unknown as { modelSourceBench: ModelSourceBench }).modelSourceBench.run(s), settings);
    console.log(formatRows(`[chromium ${version}, webgpu: ${report.adapter}]`, report.rows));
  }, fileURLToPath(new URL('model-source-bench/page.ts', import.meta.url)));
}

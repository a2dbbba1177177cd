// Browser side of `npm run bench:model-source` (scripts/bench-model-source.ts bundles this file into a page through
// src/gpu/chromium-page.ts): the shared measurements on the page's WebGPU device. Not imported by the app.
import { acquireDevice } from '../../src/gpu/device.ts';
import { measureModelSource, type SourceBenchOptions } from './measure.ts';

async function run(options: Pick<SourceBenchOptions, 'mb' | 'repeats'>) {
  const { device, adapterInfo } = await acquireDevice(navigator.gpu);
  try {
    const rows = await measureModelSource({ ...options, device });
    return { adapter: `${adapterInfo.vendor} / ${adapterInfo.architecture} ${adapterInfo.description}`.trim(), rows };
  } finally {
    device.destroy();
  }
}

export const modelSourceBench = { run };
export type ModelSourceBench = typeof modelSourceBench;
(globalThis as { modelSourceBench?: ModelSourceBench }).modelSourceBench = modelSourceBench;

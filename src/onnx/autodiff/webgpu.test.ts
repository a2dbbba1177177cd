// The gradient graphs on onnxruntime-node's WebGPU EP (the native engine onnxruntime-web/webgpu also uses) agree
// with the CPU EP: attention block and UNet-like block, float32, tolerance 1e-4 of the largest gradient (measured
// ~7e-5 on SwiftShader). Only the small int64 shape ops land on the CPU EP there. Opt-in, because it needs a Vulkan
// driver at process start:
//   ORT_WEBGPU=1 LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
//     XDG_RUNTIME_DIR=/tmp npx vitest run src/onnx/autodiff/webgpu
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildGradientModel } from './index.ts';
import { buildCase, makeFeeds, type CaseSpec } from './gradcheck.ts';
import { attentionSpec, unetSpec } from './fixtures.ts';

async function gradients(spec: CaseSpec, ep: string) {
  const wrt = Object.keys(spec.inputs);
  const model = buildGradientModel(buildCase(spec, 'float32'), { loss: 'loss', wrt });
  const feeds = Object.fromEntries(Object.entries(makeFeeds(spec, 1)).map(([k, v]) => [k, new ort.Tensor('float32', Float32Array.from(v), spec.inputs[k].dims)]));
  const session = await ort.InferenceSession.create(model, { executionProviders: [ep] });
  try {
    const out = await session.run(feeds);
    return wrt.flatMap((w) => Array.from(out[`${w}_grad`].data as Float32Array));
  } finally {
    await session.release();
  }
}

describe.skipIf(!process.env.ORT_WEBGPU)('gradient graphs on the WebGPU EP', () => {
  for (const [name, spec] of [['attention', attentionSpec({ dtype: 'float32' })], ['UNet block', unetSpec]] as const) {
    it(`${name}: WebGPU matches CPU (tol 1e-4 relative)`, async () => {
      const [cpu, gpu] = [await gradients(spec, 'cpu'), await gradients(spec, 'webgpu')];
      const scale = Math.max(...cpu.map(Math.abs));
      const diff = Math.max(...cpu.map((v, i) => Math.abs(v - gpu[i])));
      expect(diff / scale).toBeLessThan(1e-4);
    });
  }
});

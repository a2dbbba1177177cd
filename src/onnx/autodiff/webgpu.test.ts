// The gradient graphs on onnxruntime-node's WebGPU EP (the native engine onnxruntime-web/webgpu also uses) agree
// with the CPU EP, for the composite blocks and one small graph per family of emitted gradient ops; float32,
// tolerance 1e-3 of the largest gradient (measured up to 2e-4 on SwiftShader, whose sin/exp differ slightly from
// the CPU's). Only the small int64 shape ops land on the CPU EP there. Opt-in, because it needs a Vulkan
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

const one = (inputs: Record<string, number[]>, build: CaseSpec['build']): CaseSpec => ({
  inputs: Object.fromEntries(Object.entries(inputs).map(([k, dims]) => [k, { dims }])), build, dtype: 'float32',
});
const wobble = (g: Parameters<CaseSpec['build']>[0], y: string) => g.op('Mul', [y, g.op('Sin', [y])]);

/** One small graph per family of emitted gradient ops (ScatterND add, negative Pad, ConvTranspose, ...). */
const families: [string, CaseSpec][] = [
  ['attention', attentionSpec({ dtype: 'float32' })],
  ['UNet block', unetSpec],
  ['Gather (ScatterND add)', one({ x: [4, 3] }, (g, i) => wobble(g, g.op('Gather', [i.x, g.int64s([0, 2, 2, -1])]))) ],
  ['Slice step 3 (negative Pad)', one({ x: [2, 8, 3] }, (g, i) => wobble(g, g.op('Slice', [i.x, g.int64s([0, 1]), g.int64s([8, 3]), g.int64s([1, 2]), g.int64s([3, 1])])))],
  ['Conv dilated, grouped, strided', one({ x: [1, 4, 7, 6], w: [4, 2, 2, 3] }, (g, i) => g.op('Conv', [i.x, i.w], { group: 2, strides: [2, 1], dilations: [2, 1], pads: [1, 0, 0, 1] }))],
  ['InstanceNormalization', one({ x: [2, 3, 4], s: [3], b: [3] }, (g, i) => g.op('InstanceNormalization', [i.x, i.s, i.b]))],
  ['Tile, Pad, Max, Clip', one({ x: [2, 3], y: [4] }, (g, i, k) => g.op('Max', [g.op('Clip', [g.op('Tile', [g.op('Pad', [i.x, g.int64s([1, 0, 0, 1])]), g.int64s([1, 2])]), k.scalar(-0.5), k.scalar(0.6)]), g.op('Tile', [g.op('Concat', [i.y, i.y], { axis: 0 }), g.int64s([1])])]))],
  ['ReduceMax, Split, Expand, Where', one({ x: [2, 3], y: [4, 1] }, (g, i) => {
    const [p, q] = g.node('Split', [g.op('ReduceMax', [g.op('Expand', [i.y, g.int64s([4, 4])])], { axes: [0], keepdims: 1 }), g.int64s([1, 3])], { axis: 1 }, { outputs: 2 });
    return g.op('Where', [g.constant(Uint8Array.from([1, 0, 1, 1, 0, 1]), [2, 3]), g.op('Mul', [q, i.x]), wobble(g, p)]);
  })],
];

describe.skipIf(!process.env.ORT_WEBGPU)('gradient graphs on the WebGPU EP', () => {
  for (const [name, spec] of families) {
    it(`${name}: WebGPU matches CPU (tol 1e-3 relative)`, async () => {
      const [cpu, gpu] = [await gradients(spec, 'cpu'), await gradients(spec, 'webgpu')];
      const scale = Math.max(...cpu.map(Math.abs));
      const diff = Math.max(...cpu.map((v, i) => Math.abs(v - gpu[i])));
      expect(diff / scale).toBeLessThan(1e-3);
    });
  }
});

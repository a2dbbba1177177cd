// Query-chunked attention against the graph as exported, on onnxruntime-node: the tiny real SD1.5 (diffusers'
// exporter) and SDXL (optimum's) UNets and the embedded model's own UNet, with chunk budgets that split every
// attention into uneven chunks. Each query row's softmax and weighted sum are the same arithmetic in either graph, so
// outputs may differ only by the GEMM kernels' blocking of different row counts: tolerance 1e-6 of the output's
// largest magnitude (a few float32 ulps of a sum of ≤ 4096 terms; measured: 0). Also: what the rewrite recognises,
// that the zero term torch exports with baddbmm is gone, and the activation peak it saves at SD1.5's 512².
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unetAttentionAt, MAX_CALL_BATCH } from '../../engine/unet-graph.ts';
import { nodeWebGpuOrt } from '../../worker/node-webgpu-ort.ts';
import { readModel, writeModel } from '../model-io.ts';
import { createGraphBuilder } from '../builder.ts';
import { DataType, type ModelProto } from '../proto.ts';
import { chunkAttention, findAttention, MAX_PARTS, planAttentionChunks, SCORE_CHUNK_BYTES } from './chunk-attention.ts';

const root = join(import.meta.dirname, '../../..');
interface Unet { name: string; dir: string; graph: string; data: string; dims: Record<string, number[]> }
const UNETS: Unet[] = [
  { name: 'SD1.5 (diffusers export)', dir: 'fixtures/sd15/export-diffusers/unet', graph: 'model.onnx', data: 'weights.pb', dims: { sample: [2, 4, 16, 16], timestep: [2], encoder_hidden_states: [2, 77, 32] } },
  { name: 'SDXL (optimum export)', dir: 'fixtures/sdxl/export-optimum/unet', graph: 'model.onnx', data: 'model.onnx_data', dims: { sample: [2, 4, 16, 16], timestep: [2], encoder_hidden_states: [2, 77, 20], text_embeds: [2, 14], time_ids: [2, 6] } },
  { name: 'embedded UNet', dir: 'models', graph: 'unet.onnx', data: 'unet.onnx.data', dims: { sample: [2, 3, 32, 32], timestep: [2], encoder_hidden_states: [2, 16, 64] } },
];

function wave(n: number, seed: number, scale = 1) {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * scale);
}
const int64Timestep = (model: ModelProto) => model.graph!.input!.find((v) => v.name === 'timestep')?.type?.tensorType?.elemType === DataType.INT64;
/** Parts of the widest Split or Concat: each binds all of them at once on WebGPU. */
const widestSplitOrConcat = (m: ModelProto) => Math.max(0, ...(m.graph!.node ?? []).filter((n) => n.opType === 'Split' || n.opType === 'Concat').map((n) => (n.opType === 'Split' ? n.output! : n.input!).length));
const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

type Ort = Pick<typeof ort, 'InferenceSession' | 'Tensor'>;

async function run(model: ModelProto, unet: Unet, runtime: Ort = ort, options: ort.InferenceSession.SessionOptions = {}): Promise<Float32Array> {
  const data = new Uint8Array(readFileSync(join(root, unet.dir, unet.data)));
  const session = await runtime.InferenceSession.create(writeModel(model), { ...options, externalData: [{ path: unet.data, data }] });
  const feeds = Object.fromEntries(Object.entries(unet.dims).map(([name, dims], i) => {
    if (name === 'timestep') return [name, int64Timestep(model) ? new runtime.Tensor('int64', BigInt64Array.from([981n, 501n]), dims) : new runtime.Tensor('float32', new Float32Array([981, 501]), dims)];
    return [name, new runtime.Tensor('float32', wave(count(dims), i, name === 'time_ids' ? 64 : 1), dims)];
  }));
  const out = await session.run(feeds);
  await session.release();
  return out[session.outputNames[0]].data as Float32Array;
}

describe('query-chunked attention', () => {
  for (const unet of UNETS) {
    it(`gives ${unet.name}'s outputs with every attention split into uneven chunks`, async () => {
      const model = readModel(new Uint8Array(readFileSync(join(root, unet.dir, unet.graph))));
      const whole = planAttentionChunks(model, unet.dims, Infinity);
      expect(whole.unrecognised).toEqual([]);
      expect(whole.chunks.size).toBe(0);
      const expected = await run(model, unet);
      const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(scale).toBeGreaterThan(0.1);
      const largest = Math.max(...whole.shapes.map((s) => s.scoreBytes));
      // Budgets of 2/5 of the largest scores (3 chunks there: uneven for a power-of-two query count) and 1/20 (20
      // chunks: a tree of Splits and Concats of at most MAX_PARTS parts each).
      for (const [fraction, most] of [[2 / 5, 3], [1 / 20, 20]]) {
        const plan = planAttentionChunks(model, unet.dims, Math.ceil(largest * fraction));
        expect(Math.max(...plan.chunks.values())).toBe(most);
        expect(plan.shapes.some((s) => plan.chunks.has(s.site.softmax) && s.queries % plan.chunks.get(s.site.softmax)! !== 0)).toBe(true);
        const chunked = chunkAttention(model, plan);
        expect(widestSplitOrConcat(chunked)).toBeLessThanOrEqual(MAX_PARTS);
        const got = await run(chunked, unet);
        expect(expected.reduce((m, v, i) => Math.max(m, Math.abs(v - got[i])), 0)).toBeLessThanOrEqual(1e-6 * scale);
      }
    });
  }

  it("drops torch's baddbmm zero term and plans SD1.5's 512² within the chunk budget", () => {
    const model = readModel(new Uint8Array(readFileSync(join(root, 'fixtures/sd15/export-diffusers/unet/model.onnx'))));
    const dims = { sample: [MAX_CALL_BATCH, 4, 64, 64], timestep: [MAX_CALL_BATCH], encoder_hidden_states: [MAX_CALL_BATCH, 77, 32] };
    const whole = unetAttentionAt(model, dims, Infinity);
    const chunked = unetAttentionAt(model, dims);
    // [4 samples · 8 heads, 4096, 4096] float32 = 2 GiB per self-attention's scores, as exported.
    expect(whole.activations.largestBytes).toBe(MAX_CALL_BATCH * 8 * 4096 * 4096 * 4);
    expect(chunked.activations.largestBytes).toBeLessThanOrEqual(SCORE_CHUNK_BYTES);
    expect(chunked.activations.peakBytes).toBeLessThan(whole.activations.peakBytes / 8);
    // 2 GiB / 64 MiB = 32 chunks for each of the three 4096-query self-attentions.
    expect([...chunked.plan.chunks.values()].filter((n) => n === 32)).toHaveLength(3);
    const rewritten = chunkAttention(model, chunked.plan);
    expect(widestSplitOrConcat(rewritten)).toBeLessThanOrEqual(MAX_PARTS);
    const fills = (m: ModelProto) => (m.graph!.node ?? []).filter((n) => n.opType === 'ConstantOfShape' && n.name?.includes('attn1')).length;
    expect(fills(model)).toBeGreaterThan(0);
    expect(fills(rewritten)).toBeLessThan(fills(model));
  });

  // ORT's WebGPU Split and Concat bind every part as a storage buffer: 20 chunks in one node failed there ("Too many
  // storage buffers in shader"); the tree of ≤ MAX_PARTS parts runs. Tolerance as the engine's GPU tests: SwiftShader's
  // exp differs from the CPU's in the last bits (src/onnx/autodiff/webgpu.test.ts: 1e-3 of the largest value).
  it("runs SD1.5's chunk tree on onnxruntime-web's WebGPU EP with the CPU's outputs", async () => {
    const unet = UNETS[0];
    const model = readModel(new Uint8Array(readFileSync(join(root, unet.dir, unet.graph))));
    const largest = Math.max(...planAttentionChunks(model, unet.dims, Infinity).shapes.map((s) => s.scoreBytes));
    const chunked = chunkAttention(model, planAttentionChunks(model, unet.dims, Math.ceil(largest / 20)));
    const web = await nodeWebGpuOrt();
    try {
      const [cpu, gpu] = [await run(model, unet), await run(chunked, unet, web.ort as unknown as Ort, { executionProviders: [{ name: 'webgpu', device: web.device } as never] })];
      const scale = cpu.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(cpu.reduce((m, v, i) => Math.max(m, Math.abs(v - gpu[i])), 0)).toBeLessThanOrEqual(1e-3 * scale);
    } finally {
      web.device.destroy();
    }
  });

  it('leaves an attention with a real mask whole, and names it', () => {
    const g = createGraphBuilder('masked');
    const q = g.input('q', DataType.FLOAT, [2, 8, 4]);
    const kT = g.input('kT', DataType.FLOAT, [2, 4, 8]);
    const v = g.input('v', DataType.FLOAT, [2, 8, 4]);
    const mask = g.input('mask', DataType.FLOAT, [2, 8, 8]);
    const scores = g.op('Add', [g.op('MatMul', [q, kT]), mask]);
    g.output(g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]), DataType.FLOAT);
    const { sites, unrecognised } = findAttention(g.build().graph!);
    expect(sites).toEqual([]);
    expect(unrecognised).toEqual(['/Softmax']);
  });
});

// Activation checkpointing (src/onnx/autodiff/checkpoint.ts, segments from unet-segments.ts) on real UNet graphs: the
// tiny real-exporter SD1.5 UNet (fixtures/sd15, diffusers' export) and the embedded UNet (models/). For the same
// feeds, the checkpointed DPO training graphs give the loss, the diffs and every LoRA gradient of the plain graph
// (whose numbers dpo-graph-sd15.test.ts checks against PyTorch): bit-identical with the same kernels, and to float32
// round-off where onnxruntime fuses the two graphs' forward passes differently. onnxruntime's own order (execution-memory.ts) runs
// every recomputed node in the backward pass, and the planned peak of live values drops from off to blocks to layers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ortExecutionOrder } from '../onnx/execution-memory.ts';
import { externalLocations, readModel } from '../onnx/model-io.ts';
import { buildDpoGraph, type DpoGraph } from './dpo-graph.ts';
import { planTrainingMemory } from './memory-plan.ts';
import { QUICK_START } from './quick-start.ts';
import { dpoTestFeeds } from './dpo-test-feeds.ts';
import { relL2 } from '../pipelines/reference-metrics.ts';
import { CHECKPOINT_MODES, type CheckpointMode } from './unet-segments.ts';

const ROOT = join(import.meta.dirname, '../..');
const UNETS = [
  { name: 'tiny SD1.5 export', path: join(ROOT, 'fixtures/sd15/export-diffusers/unet/model.onnx'), imageDims: [4, 16, 16], contextDims: [77, 32] },
  { name: 'embedded UNet', path: join(ROOT, 'models/unet.onnx'), imageDims: undefined, contextDims: undefined },
];
const RANK = 4;

describe.each(UNETS)('activation checkpointing on the $name', ({ path, imageDims, contextDims }) => {
  const unet = readModel(readFileSync(path));
  const externalData = externalLocations(unet).map((p) => ({ path: p, data: new Uint8Array(readFileSync(join(path, '..', p))) }));
  const graphs = Object.fromEntries(CHECKPOINT_MODES.map((checkpoint) => [checkpoint, buildDpoGraph(unet, { rank: RANK, imageDims, contextDims, checkpoint })])) as Record<CheckpointMode, DpoGraph>;

  // 'basic': the same kernels, so the same bits. 'all' (onnxruntime's default): fusions (MatMul + Add → Gemm, …) apply
  // once a forward value has no backward reader any more, which moves the forward pass by float32 round-off (seen
  // 8e-6 relative on the loss, 3.4e-5 on the gradients, after β = 500); held to the 1e-4.
  it.each([['basic', 0], ['all', 1e-4]] as const)("gives the loss, the diffs and every LoRA gradient of the plain graph (ORT graph optimisation '%s', relative error ≤ %d)", async (level, tolerance) => {
    const results: Record<string, Record<string, Float32Array>> = {};
    for (const mode of CHECKPOINT_MODES) {
      const session = await ort.InferenceSession.create(graphs[mode].training, { externalData, logSeverityLevel: 3, graphOptimizationLevel: level, ...QUICK_START });
      const out = await session.run(dpoTestFeeds(graphs[mode], RANK, 7));
      results[mode] = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
      await session.release();
    }
    const names = Object.keys(results.off).filter((k) => k.endsWith('_grad'));
    expect(names).toHaveLength(2 * graphs.off.lora.length);
    for (const mode of ['blocks', 'layers'] as const) {
      expect(Math.abs(results[mode].loss[0] - results.off.loss[0])).toBeLessThanOrEqual(tolerance * Math.abs(results.off.loss[0]));
      for (const k of ['model_diff', 'ref_diff', ...names]) {
        expect(relL2(results.off[k], new Float32Array(results.off[k].length)), `${k} is not zero`).toBeGreaterThan(0);
        expect(relL2(results[mode][k], results.off[k]), `${mode}: ${k}`).toBeLessThanOrEqual(tolerance);
      }
    }
  });

  it("runs every recomputed node in onnxruntime's order after the backward pass has begun, and after the gradient it waits for", () => {
    for (const mode of ['blocks', 'layers'] as const) {
      const nodes = readModel(graphs[mode].training).graph!.node!;
      const copies = nodes.filter((n) => n.name?.endsWith('_recomputed'));
      expect(copies.length).toBeGreaterThan(20);
      const order = ortExecutionOrder(nodes).map((n) => n.name);
      const seed = order.findIndex((n) => n?.startsWith('loss_grad/'));
      expect(seed).toBeGreaterThan(0);
      for (const c of copies) expect(order.indexOf(c.name), c.name!).toBeGreaterThan(seed);
      // Each block's copies run after the backward nodes of the block after it (its gradient comes from there).
      const segments = ['down_blocks.0', 'down_blocks.1', 'mid_block', 'up_blocks.0', 'up_blocks.1'];
      const firstCopy = (s: string) => order.findIndex((n) => n?.startsWith(`policy/${s}/`) && n.endsWith('_recomputed'));
      const lastBackward = (s: string) => order.findLastIndex((n) => n?.startsWith(`policy/${s}/`) && n.includes('_grad/'));
      let checked = 0;
      for (let k = 0; mode === 'blocks' && k + 1 < segments.length; k++) {
        if (firstCopy(segments[k]) < 0 || lastBackward(segments[k + 1]) < 0) continue;
        expect(firstCopy(segments[k]), segments[k]).toBeGreaterThan(lastBackward(segments[k + 1]));
        checked++;
      }
      if (mode === 'blocks') expect(checked).toBeGreaterThanOrEqual(2);
    }
  });

  it('plans a lower peak of live values, coarse to fine', () => {
    const dims = imageDims ?? graphs.off.imageDims;
    const plan = (checkpoint: CheckpointMode) => planTrainingMemory(unet, { batch: 1, latentDims: dims, contextDims: contextDims ?? graphs.off.contextDims, rank: RANK, checkpoint });
    const [off, blocks, layers] = CHECKPOINT_MODES.map(plan);
    expect(blocks.activationsBytes).toBeLessThan(0.75 * off.activationsBytes);
    expect(layers.activationsBytes).toBeLessThan(blocks.activationsBytes);
    expect(layers.weightsBytes).toBe(off.weightsBytes);
  });
});

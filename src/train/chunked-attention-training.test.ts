// Attention in query chunks in the DPO training graph (dpo-graph.ts; the same rewrite as inference,
// src/onnx/passes/chunk-attention.ts), each chunk of the policy recomputed before its own backward nodes
// (unet-segments.ts): on the tiny real-exporter SD1.5 UNet at 16×16 latents with an 8-chunk budget (a tree of Splits),
// the loss, the diffs and every LoRA gradient equal the plain graph's (whose numbers dpo-graph-real.test.ts checks
// against PyTorch): the chunks do the same per-row arithmetic, and the recomputed copies read their inputs through
// x + 0·g (checkpoint.ts), so float32 round-off is all that may differ (held to 1e-5 relative L2; measured ≤ 1.3e-6).
// The memory plan's largest value shrinks from the whole scores to one chunk's, and its peak drops.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { externalLocations, readModel } from '../onnx/model-io.ts';
import { buildDpoGraph, type DpoGraph, type DpoGraphOptions } from './dpo-graph.ts';
import { planTrainingMemory } from './memory-plan.ts';
import { QUICK_START } from './quick-start.ts';
import { dpoTestFeeds } from './dpo-test-feeds.ts';
import { relL2 } from '../pipelines/reference-metrics.ts';

const PATH = join(import.meta.dirname, '../../fixtures/sd15/export-diffusers/unet/model.onnx');
const RANK = 4;
const PAIRS = 2;
// 2 pairs = 4 samples × 8 heads × 256 × 256 float32 = 8 MiB of scores in each 16×16 self-attention: 8 chunks of 1 MiB.
const CHUNK_BYTES = 2 ** 20;

describe('query-chunked attention in the training graph', () => {
  const unet = readModel(readFileSync(PATH));
  const externalData = externalLocations(unet).map((p) => ({ path: p, data: new Uint8Array(readFileSync(join(PATH, '..', p))) }));
  const options: DpoGraphOptions = { rank: RANK, imageDims: [4, 16, 16], contextDims: [77, 32], batch: PAIRS };
  const plain = buildDpoGraph(unet, { ...options, attentionChunkBytes: Infinity });
  const chunked = buildDpoGraph(unet, { ...options, attentionChunkBytes: CHUNK_BYTES });

  it('gives the loss, the diffs and every LoRA gradient of the plain graph', async () => {
    const run = async (graph: DpoGraph) => {
      const session = await ort.InferenceSession.create(graph.training, { externalData, logSeverityLevel: 3, graphOptimizationLevel: 'basic', ...QUICK_START });
      const out = await session.run(dpoTestFeeds(graph, RANK, 11));
      await session.release();
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
    };
    const [a, b] = [await run(plain), await run(chunked)];
    const names = Object.keys(a).filter((k) => k.endsWith('_grad'));
    expect(names).toHaveLength(2 * plain.lora.length);
    for (const k of ['loss', 'model_diff', 'ref_diff', ...names]) {
      expect(relL2(a[k], new Float32Array(a[k].length)), `${k} is not zero`).toBeGreaterThan(0);
      expect(relL2(b[k], a[k]), k).toBeLessThanOrEqual(1e-5);
    }
  });

  it('recomputes every chunk of the policy in the backward pass, and plans one chunk of scores at a time', () => {
    const nodes = readModel(chunked.training).graph!.node!;
    const recomputed = nodes.filter((n) => n.name?.endsWith('_recomputed') && /_chunked\/\d+\//.test(n.name));
    // Three 16×16 self-attentions in 8 chunks and their cross-attentions ([32, 256, 77] float32 = 2.4 MiB) in 3.
    expect(new Set(recomputed.map((n) => /^(.*_chunked\/\d+)\//.exec(n.name!)![1])).size).toBe(3 * 8 + 3 * 3);
    const plan = (attentionChunkBytes: number) => planTrainingMemory(unet, { batch: PAIRS, latentDims: [4, 16, 16], contextDims: [77, 32], rank: RANK, attentionChunkBytes });
    const [whole, inChunks] = [plan(Infinity), plan(CHUNK_BYTES)];
    expect(whole.largestTensorBytes).toBe(4 * 8 * 256 * 256 * 4);
    expect(inChunks.largestTensorBytes).toBeLessThanOrEqual(CHUNK_BYTES);
    expect(inChunks.activationsBytes).toBeLessThan(whole.activationsBytes);
  });
});

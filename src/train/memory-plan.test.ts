// The training memory plan on the tiny real SD1.5 export (fixtures/sd15): its terms against numbers known
// independently of the liveness simulation (whose order is checked against ORT's own profile in src/onnx) — the
// weight file's size, the attention-score tensor of diffusers' attention processor ([2B·heads, hw, hw] or [2B·heads, hw, 77]), the LoRA parameter count from the site shapes — and the refusal message.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../onnx/model-io.ts';
import { planTrainingMemory, planWithCheckpointing, trainingFitProblem } from './memory-plan.ts';
import type { CheckpointChoice } from './unet-segments.ts';

const UNET = join(import.meta.dirname, '../../fixtures/sd15/export-diffusers/unet');
const unet = readModel(readFileSync(join(UNET, 'model.onnx')));
const plan = (batch: number, side = 8) => planTrainingMemory(unet, { batch, latentDims: [4, side, side], contextDims: [77, 32], rank: 8 });

describe('training memory plan (tiny SD1.5 export)', () => {
  it('counts every weight once: the external weights.pb plus the small inline tensors', () => {
    const external = statSync(join(UNET, 'weights.pb')).size;
    const p = plan(1);
    expect(p.weightsBytes).toBeGreaterThanOrEqual(external);
    expect(p.weightsBytes).toBeLessThan(external * 1.1); // inline tensors are < 1 KB each
  });

  it("with weights 'fp16' plans the converted weights at 2 bytes and their float32 Casts (one alive at a time) as activations", () => {
    const external = statSync(join(UNET, 'weights.pb')).size;
    const [fp32, fp16] = (['fp32', 'fp16'] as const).map((weights) => planTrainingMemory(unet, { batch: 1, latentDims: [4, 8, 8], contextDims: [77, 32], rank: 8, weights }));
    expect(fp32.weights).toBe('fp32');
    expect(fp16.weights).toBe('fp16');
    // every weight of weights.pb is converted; only the small inline tensors (< 1 KB each) may stay float32
    expect(fp16.weightsBytes).toBeGreaterThanOrEqual(external / 2);
    expect(fp16.weightsBytes).toBeLessThan(fp32.weightsBytes - external / 2 + 1);
    // the Casts add at most a few weights' worth of float32 at the peak, never all of them
    expect(fp16.activationsBytes - fp32.activationsBytes).toBeLessThan(0.25 * external);
    expect(fp16.loraBytes).toBe(fp32.loraBytes);
    const chosen = planWithCheckpointing(unet, { batch: 1, latentDims: [4, 8, 8], contextDims: [77, 32], rank: 8, weights: 'fp16' }, {}, 'auto', 'x');
    expect(chosen.summary).toMatch(/^weights fp16, memory plan \d+\.\d\d GiB without checkpointing$/);
  });

  it("finds the attention scores as the largest activation: [2B·8 heads, hw, max(hw, 77)] float32 (self- or cross-attention at level 0)", () => {
    for (const [batch, side] of [[1, 8], [2, 8], [1, 16]]) {
      const hw = side * side;
      expect(plan(batch, side).largestTensorBytes).toBe(2 * batch * 8 * hw * Math.max(hw, 77) * 4);
    }
  });

  it('scales activations with the batch and plans LoRA + AdamW as 4 float32 copies of r·(in+out) per site', () => {
    const [one, two] = [plan(1), plan(2)];
    // All but the batch-independent values (the LoRA gradients, 4 bytes a parameter, and scalars) double.
    expect(two.activationsBytes).toBeLessThanOrEqual(2 * one.activationsBytes);
    expect(two.activationsBytes).toBeGreaterThanOrEqual(2 * (one.activationsBytes - 4 * one.loraParams) - 1024);
    expect(one.unknownValues).toBeLessThan(80); // the time-embedding vectors ([2B, ≤ 4·width]) of the two UNet copies only
    // 32 sites: to_q/to_k/to_v/to_out.0 of 8 attentions, with (in, out) from the fixture's widths 16 and 32, context 32
    expect(one.loraParams).toBeGreaterThan(0);
    expect(one.loraBytes).toBe(16 * one.loraParams);
    expect(one.totalBytes).toBe(one.weightsBytes + one.activationsBytes + one.transientBytes + one.loraBytes);
  });

  it('refuses with the numbers when the plan exceeds the backend memory or the per-buffer limit', () => {
    const p = plan(2, 16);
    expect(trainingFitProblem(p, { memoryBytes: 1 << 30, maxBufferBytes: 1 << 30 }, 'at 128×128, batch 2')).toBeNull();
    expect(trainingFitProblem(p, { memoryBytes: 2 ** 20 }, 'at 128×128, batch 2'))
      .toMatch(/^training at 128×128, batch 2 needs about \d+ MiB \(weights 1 MiB \+ activations \d+ MiB \+ transient \d+ MiB \+ LoRA\/AdamW 0 MiB\); this backend has 1 MiB/);
    expect(trainingFitProblem(p, { maxBufferBytes: 2 ** 20 }, 'here')).toMatch(/needs a 8 MiB activation buffer; the adapter allows 1 MiB per buffer/);
  });
});

describe('planWithCheckpointing (tiny SD1.5 export, latents 4×16×16)', () => {
  const o = { batch: 1, latentDims: [4, 16, 16], contextDims: [77, 32], rank: 8 };
  const [off, blocks, layers] = (['off', 'blocks', 'layers'] as const).map((checkpoint) => planTrainingMemory(unet, { ...o, checkpoint }));
  const choose = (memoryBytes: number | undefined, choice: CheckpointChoice = 'auto') => planWithCheckpointing(unet, o, { memoryBytes }, choice, 'here');

  it('keeps the plain graph when it fits, and recomputes coarse to fine when it does not', () => {
    expect(off.totalBytes).toBeGreaterThan(blocks.totalBytes);
    expect(blocks.totalBytes).toBeGreaterThan(layers.totalBytes);
    expect(choose(off.totalBytes).checkpoint).toBe('off');
    const b = choose(off.totalBytes - 1);
    expect([b.checkpoint, b.problem, b.plan.totalBytes, b.without.totalBytes]).toEqual(['blocks', null, blocks.totalBytes, off.totalBytes]);
    expect(b.summary).toMatch(/^weights fp32, checkpointing blocks: memory plan \d+\.\d\d GiB \(\d+\.\d\d GiB without; activations .* instead of .*\); tried off \d+\.\d\d GiB, blocks \d+\.\d\d GiB$/);
    expect(choose(blocks.totalBytes - 1).checkpoint).toBe('layers');
  });

  it('refuses with every plan tried when none fits, and obeys a forced mode', () => {
    const none = choose(layers.totalBytes - 1);
    expect(none.checkpoint).toBe('layers');
    expect(none.problem).toMatch(/^training here needs about \d+ MiB .*; this backend has \d+ MiB\. Lower the resolution or the batch \(weights fp32, checkpointing layers: .*tried off .*, blocks .*, layers .*\)$/);
    expect(choose(off.totalBytes - 1, 'off').problem).toMatch(/Lower the resolution or the batch, or recompute activations \(checkpointing\)$/);
    expect(choose(undefined, 'layers').plan.totalBytes).toBe(layers.totalBytes);
    expect(choose(undefined).checkpoint).toBe('off');
    expect(() => choose(undefined, 'all' as CheckpointChoice)).toThrow(/checkpoint must be one of auto, off, blocks, layers, got all/);
  });

  it('aims below a budget without refusing above it', () => {
    const over = planWithCheckpointing(unet, o, { budgetBytes: 1 }, 'auto', 'here');
    expect([over.checkpoint, over.problem]).toEqual(['layers', null]);
    expect(over.summary).toMatch(/above the 0\.00 GiB aimed at/);
  });
});

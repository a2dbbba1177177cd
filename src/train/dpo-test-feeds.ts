// Test support: seeded feeds for a DPO training graph (dpo-graph.ts), with LoRA B ≠ 0 so that every A and B has a
// gradient; shared by the tests that compare two training graphs' losses and gradients on the same inputs.
import * as ort from 'onnxruntime-node';
import type { DpoGraph } from './dpo-graph.ts';
import { createRandom } from './random.ts';

/** Feeds for 2 pairs (ᾱ 0.7 / 0.2, t 150 / 700, β_dpo 500), LoRA factors of rank `rank`, values drawn from `seed`. */
export function dpoTestFeeds(graph: DpoGraph, rank: number, seed: number): Record<string, ort.Tensor> {
  const pairs = 2;
  const r = createRandom(seed);
  const t = (dims: number[], scale = 1, values?: number[]) =>
    new ort.Tensor('float32', values ? Float32Array.from(values) : Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => scale * r.normal()), dims);
  const image = [pairs, ...graph.imageDims];
  const feeds: Record<string, ort.Tensor> = {
    x_w: t(image), x_l: t(image), noise: t(image), alpha_bar: t([pairs], 1, [0.7, 0.2]), timestep: t([pairs], 1, [150, 700]),
    context: t([pairs, ...graph.contextDims]), beta_dpo: t([], 1, [500]), lora_scale: t([], 1, [1]),
  };
  for (const l of graph.lora) Object.assign(feeds, { [l.a]: t([rank, l.site.inFeatures], 0.3), [l.b]: t([l.site.outFeatures, rank], 0.05) });
  return feeds;
}

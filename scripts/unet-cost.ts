// The embedded UNet's cost per evaluation, for choosing a base model (issue 11's 1-second goal, issue 12's retrain):
// multiply-accumulates of every Conv, MatMul and Gemm from the graph's own shapes (src/onnx/autodiff/shapes.ts), split
// by the resolution each runs at, beside the parameter count. Prints a table, asserts nothing.
//   npm run unet:cost -- [--config '{"blockOutChannels":[32,64,64],"crossAttention":[false,true,true]}' ...]
// Without --config: the committed model (models/manifest.json). Each --config is merged over the committed config.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { paramSource } from '../src/embedded/layers.ts';
import { buildUnet, type UnetConfig } from '../src/embedded/unet.ts';
import { createShapeEnv, inferNode, type Dim } from '../src/onnx/autodiff/shapes.ts';
import { int } from '../src/onnx/proto.ts';

const { values } = parseArgs({ options: { config: { type: 'string', multiple: true, default: [] } } });
const committed: UnetConfig = JSON.parse(readFileSync(join(import.meta.dirname, '../models/manifest.json'), 'utf8')).unet.config;

const known = (dims: Dim[] | null | undefined) => (dims && dims.every((d): d is number => typeof d === 'number') ? dims : undefined);
const product = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** MACs per node type and per output resolution (the last dim of a Conv's output; "tokens" for MatMul), batch 1. */
function cost(config: UnetConfig) {
  const { blockOutChannels: chans, crossAttention, attentionHeadDim } = config;
  const attending = chans.filter((_, level) => crossAttention[level] || level === chans.length - 1); // the mid block attends too
  const bad = attending.find((c) => c % attentionHeadDim !== 0);
  if (bad !== undefined) throw new Error(`${bad} channels at a level with attention are not a multiple of attentionHeadDim ${attentionHeadDim}`);
  const model = buildUnet(config, paramSource(0));
  const graph = model.graph!;
  for (const input of graph.input ?? []) for (const d of input.type?.tensorType?.shape?.dim ?? []) if (d.dimParam === 'batch') { d.dimParam = undefined; d.dimValue = 1; }
  const env = createShapeEnv(graph);
  const macs = new Map<string, number>();
  const add = (key: string, n: number) => macs.set(key, (macs.get(key) ?? 0) + n);
  for (const node of graph.node ?? []) {
    inferNode(node, env);
    const shape = (name: string) => known(env.types.get(name)?.dims);
    const out = shape(node.output![0]);
    if (node.opType === 'Conv') {
      const w = shape(node.input![1]);
      if (!out || !w) throw new Error(`unknown shape at ${node.name}`);
      add(`conv ${out[2]}²`, product(out) * product(w.slice(1)));
    } else if (node.opType === 'MatMul' || node.opType === 'Gemm') {
      const a = shape(node.input![0]);
      if (!out || !a) throw new Error(`unknown shape at ${node.name}`);
      const tokens = out.length >= 2 ? out[out.length - 2] : 1;
      add(`matmul, ${tokens} rows`, product(out) * a[a.length - 1]);
    }
  }
  const params = (graph.initializer ?? []).reduce((n, t) => n + product((t.dims ?? []).map(int)), 0);
  return { macs, params };
}

const configs = values.config.length ? values.config.map((c) => ({ label: c, config: { ...committed, ...JSON.parse(c) } })) : [{ label: 'committed', config: committed }];
const committedTotal = [...cost(committed).macs.values()].reduce((a, b) => a + b, 0);
for (const { label, config } of configs) {
  const { macs, params } = cost(config);
  const total = [...macs.values()].reduce((a, b) => a + b, 0);
  console.log(`\n${label}: ${(params / 1e6).toFixed(2)} M parameters, ${(total / 1e6).toFixed(1)} M MAC per image per evaluation (${(total / committedTotal).toFixed(2)}× the committed model's)`);
  console.log('| part | M MAC | share |\n|---|---|---|');
  for (const [key, n] of [...macs].sort((a, b) => b[1] - a[1])) console.log(`| ${key} | ${(n / 1e6).toFixed(1)} | ${((100 * n) / total).toFixed(0)} % |`);
}

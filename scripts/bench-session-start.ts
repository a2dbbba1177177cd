// Benchmark: how long onnxruntime-node takes to start a DPO training session, sequential vs parallel executor
// (src/train/quick-start.ts), on the real-export fixtures' UNets (fixtures/sd15, fixtures/sdxl); prints a table,
// asserts nothing. Each mode: session creation time, one run's time, and whether the loss and every LoRA gradient are
// bit-identical to the sequential executor's.
//   npm run bench:session-start -- [--fixtures sd15,sdxl] [--level basic]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { readModel } from '../src/onnx/model-io.ts';
import { buildDpoGraph } from '../src/train/dpo-graph.ts';
import { QUICK_START } from '../src/train/quick-start.ts';
import { readTrainReference, referenceFeeds } from '../src/train/train-reference.ts';

const { values } = parseArgs({ options: { fixtures: { type: 'string', default: 'sd15,sdxl' }, level: { type: 'string', default: 'basic' } } });
const EXPORTS: Record<string, { dir: string; data: string }> = {
  sd15: { dir: 'export-diffusers/unet', data: 'weights.pb' },
  sdxl: { dir: 'export-optimum/unet', data: 'model.onnx_data' },
};

const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);
console.log(`| fixture | nodes | executor | session creation (s) | first run (s) | loss and gradients |`);
console.log(`|---|---|---|---|---|---|`);
for (const fixture of values.fixtures.split(',')) {
  const root = join(import.meta.dirname, '../fixtures', fixture);
  const { dir, data } = EXPORTS[fixture];
  const ref = readTrainReference(join(root, 'train-reference.safetensors'));
  const settings = ref.meta('settings');
  const [c, h, w] = ref.shape('inputs.x_w').slice(1);
  const [l, d] = ref.shape('inputs.encoder_hidden_states').slice(1);
  const graph = buildDpoGraph(readModel(readFileSync(join(root, dir, 'model.onnx'))), { rank: settings.rank, imageDims: [c, h, w], contextDims: [l, d] });
  const nodes = readModel(graph.training).graph?.node?.length ?? 0;
  const externalData = [{ path: data, data: new Uint8Array(readFileSync(join(root, dir, data))) }];
  let sequential: ort.InferenceSession.ReturnType | undefined;
  for (const [executor, extra] of [['sequential', {}], ['parallel', QUICK_START]] as const) {
    let t0 = performance.now();
    const session = await ort.InferenceSession.create(graph.training, { externalData, logSeverityLevel: 3, graphOptimizationLevel: values.level as 'basic', ...extra });
    const created = seconds(t0);
    t0 = performance.now();
    const out = await session.run(referenceFeeds(ort, ref, graph) as Record<string, ort.Tensor>);
    const ran = seconds(t0);
    const outputs = Object.keys(out);
    const same = sequential ? outputs.every((k) => (out[k].data as Float32Array).every((v, i) => Object.is(v, (sequential![k].data as Float32Array)[i]))) : undefined;
    sequential ??= out;
    console.log(`| ${fixture} | ${nodes} | ${executor} | ${created} | ${ran} | ${same === undefined ? 'reference' : same ? `bit-identical (${outputs.length} outputs)` : 'DIFFERENT'} |`);
    await session.release();
  }
}

// The DPO training graph with fp16 frozen weights (dpo-graph.ts `weights: 'fp16'`, src/onnx/passes/float16-weights.ts)
// on the tiny real-exporter UNets (fixtures/sd15/export-diffusers/unet, fixtures/sdxl/export-optimum/unet with its
// added conditions), on onnxruntime-node:
//   - structure: every large float32 weight is a float16 initializer, read only through Casts, one per reading node;
//     the LoRA inputs and the gradients stay float32;
//   - onnxruntime keeps it so (SD1.5): the session's own optimised graph (optimizedModelFilePath) still holds the
//     weights in float16 (with ConstantFolding on, it folds every Cast back into a float32 initializer);
//   - (a, SD1.5) the loss, both diffs and every LoRA gradient equal our fp32 graph run on the same weights rounded to
//     float16 (roundToHalf, the pass's own rounding); tolerance TO_ROUNDED below;
//   - (b) they equal PyTorch's float64 run on the unrounded weights (fixtures/<sd15|sdxl>/train-reference.safetensors,
//     as in dpo-graph-real.test.ts) within TO_PYTORCH, which is the error of rounding the weights (see there).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModel, readWeight } from '../onnx/model-io.ts';
import { MIN_FLOAT16_ELEMENTS } from '../onnx/passes/float16-weights.ts';
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { makeTensor } from '../onnx/tensor.ts';
import { roundToHalf } from '../prepare/float16-graph.ts';
import { relL2 } from '../pipelines/reference-metrics.ts';
import { buildDpoGraph, dpoSessionOptions, type DpoGraph } from './dpo-graph.ts';
import { QUICK_START } from './quick-start.ts';
import { readTrainReference, referenceFeeds } from './train-reference.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const EXPORTS = [
  // `probe`: also read back ORT's optimised graph; `rounded`: also compare with the float32 graph on rounded weights.
  // Each is one more session (~75-100 s for SDXL on 2 cores, which CI's time budget cannot spare), so SD1.5's only:
  // SDXL is checked against PyTorch, and its own rule (the time-id projection kept float32) by the structure test.
  { name: 'SD1.5 diffusers export', fixture: 'sd15', dir: 'export-diffusers/unet', data: 'weights.pb', toPytorch: 1e-2, probe: true, rounded: true },
  { name: 'SDXL optimum export', fixture: 'sdxl', dir: 'export-optimum/unet', data: 'model.onnx_data', toPytorch: 5e-2, probe: false, rounded: false },
];
// (a) The same weights and the same float32 arithmetic: only the session differs (ConstantFolding and
// CommonSubexpressionElimination off, MatMul weights not prepacked). Measured here: bit-identical (error 0). Allowed:
// float32 round-off, should another CPU's MLAS kernels block a sum differently for packed and unpacked weights.
const TO_ROUNDED = 1e-5;
// (b) Rounding the weights to float16 moves each by up to 2⁻¹¹ = 4.9e-4 relative (about 2.8e-4 RMS); the UNet's ~30
// weight layers in a row add such errors up (√30 · 2.8e-4 ≈ 1.5e-3), and the loss and diffs are differences of MSEs.
// Since (a) holds exactly and our float32 graph on the unrounded weights lies within 1e-4 of PyTorch
// (dpo-graph-real.test.ts), what (b) measures is the rounding's own effect. Measured against PyTorch's float64 run:
//   SD1.5: loss 1.0e-3 / 1.1e-3 (DPO / NPO), model_diff 7.3e-4, ref_diff 1.3e-3, gradients (relative L2) median
//          1.7e-3 / 2.0e-3, worst 3.1e-3 / 3.2e-3: bound 1e-2;
//   SDXL:  loss 4.4e-3 / 1.4e-3, gradients worst 2.3e-2 / 2.6e-2: its tiny UNet is deeper and narrower (3 levels,
//          2 resnets per block, 2 transformer layers at the last level, 8-16 channels: sums over so few terms do not
//          average the rounding errors out): bound 5e-2.
// The bounds leave 2-3× room; a wrong weight, a lost LoRA or a wrong gradient is off by 1e-1 and more, and a rounding
// other than the pass's own is caught by (a).

type Feeds = Record<string, ort.Tensor>;

interface Result { loss: number; modelDiff: Float32Array; refDiff: Float32Array; grads: Map<string, Float32Array> }

async function run(session: ort.InferenceSession, graph: DpoGraph, feeds: Feeds): Promise<Result> {
  const out = await session.run(feeds);
  const value = (name: string) => out[name].data as Float32Array;
  const grads = new Map(graph.lora.flatMap((s) => [s.a, s.b]).map((name) => [name, value(`${name}_grad`)]));
  return { loss: value('loss')[0], modelDiff: value('model_diff'), refDiff: value('ref_diff'), grads };
}

/** Largest relative error of the loss, the diffs and every gradient (relative L2 per tensor) against `expected`. */
function worstError(got: Result, expected: (what: string) => Float32Array | number): { what: string; err: number } {
  const errors = [
    { what: 'loss', err: Math.abs(got.loss - (expected('loss') as number)) / Math.abs(expected('loss') as number) },
    { what: 'model_diff', err: relL2(got.modelDiff, expected('model_diff') as Float32Array) },
    { what: 'ref_diff', err: relL2(got.refDiff, expected('ref_diff') as Float32Array) },
    ...[...got.grads].map(([name, g]) => ({ what: name, err: relL2(g, expected(`grad.${name}`) as Float32Array) })),
  ];
  return errors.reduce((p, q) => (q.err > p.err ? q : p));
}

describe.each(EXPORTS)('DPO graph with fp16 frozen weights on the real $name (onnxruntime-node)', ({ fixture, dir, data, toPytorch: TO_PYTORCH, probe, rounded: compareRounded }) => {
  const ref = readTrainReference(join(FIXTURES, fixture, 'train-reference.safetensors'));
  const settings = ref.meta('settings');
  const unetDir = join(FIXTURES, fixture, dir);
  const unet = readModel(readFileSync(join(unetDir, 'model.onnx')));
  const files = new Map([[data, new Uint8Array(readFileSync(join(unetDir, data)))]]);
  const externalData = [{ path: data, data: files.get(data)! }];
  const [c, h, w] = ref.shape('inputs.x_w').slice(1);
  const [l, d] = ref.shape('inputs.encoder_hidden_states').slice(1);
  const options = { rank: settings.rank, imageDims: [c, h, w], contextDims: [l, d] };
  const half = buildDpoGraph(unet, { ...options, weights: 'fp16' });
  const sessionOptions = (graph: DpoGraph, extra: ort.InferenceSession.SessionOptions = {}) =>
    dpoSessionOptions(graph, { externalData, logSeverityLevel: 3, graphOptimizationLevel: 'basic', ...QUICK_START, ...extra }, files);
  let session: ort.InferenceSession;
  let rounded: { graph: DpoGraph; session: ort.InferenceSession } | undefined;

  beforeAll(async () => {
    session = await ort.InferenceSession.create(half.training, sessionOptions(half));
  });
  afterAll(async () => {
    await session?.release();
    await rounded?.session.release();
  });

  it('stores every large weight as float16, read through its own Cast at each reading node; LoRA and gradients stay float32', () => {
    const graph = readModel(half.training).graph!;
    const converted = new Set(half.float16!.converted);
    const stored = (unet.graph!.initializer ?? []).filter((t) => t.dataType === DataType.FLOAT && (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1) >= MIN_FLOAT16_ELEMENTS);
    // all but the sinusoidal time embeddings' frequencies (float32 islands, as in prepare-model's float16 graphs)
    const kept = stored.filter((t) => !converted.has(t.name!)).map((t) => t.name);
    expect(kept.length).toBeLessThanOrEqual(2);
    expect(converted.size).toBeGreaterThan(200);
    for (const t of graph.initializer!) if (converted.has(t.name!)) expect(t.dataType).toBe(DataType.FLOAT16);
    const readers = graph.node!.filter((n) => n.input!.some((x) => converted.has(x)));
    expect(readers.every((n) => n.opType === 'Cast')).toBe(true);
    const castOutputs = readers.map((n) => n.output![0]);
    expect(new Set(castOutputs).size).toBe(castOutputs.length);
    const reads = castOutputs.map((o) => graph.node!.filter((n) => n.input!.includes(o)).length);
    expect(reads.every((k) => k === 1)).toBe(true); // one Cast per reading node: never a float32 copy shared forward → backward
    for (const v of graph.input!) if (v.name!.endsWith('lora_A') || v.name!.endsWith('lora_B')) expect(v.type!.tensorType!.elemType).toBe(DataType.FLOAT);
    for (const v of graph.output!) expect(v.type!.tensorType!.elemType).toBe(DataType.FLOAT);
    const elementsOf = (names: Set<string>) => unet.graph!.initializer!.filter((t) => names.has(t.name!)).reduce((n, t) => n + (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1), 0);
    expect(half.float16!.bytes).toBeLessThan(2 * elementsOf(converted) + 64 * converted.size); // 2 bytes each, 64-byte aligned
  });

  it.runIf(probe)("keeps the weights float16 in onnxruntime's optimised graph: its Casts are not folded back into float32 weights", async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'dpo-fp16-')), 'optimized.onnx');
    const probe = await ort.InferenceSession.create(half.training, sessionOptions(half, { optimizedModelFilePath: path }));
    await probe.release();
    const optimized = readModel(readFileSync(path));
    const elements = (type: number) => optimized.graph!.initializer!.filter((t) => t.dataType === type).reduce((s, t) => s + (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1), 0);
    const converted = new Set(half.float16!.converted);
    const halfElements = unet.graph!.initializer!.filter((t) => converted.has(t.name!)).reduce((n, t) => n + (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1), 0);
    expect(elements(DataType.FLOAT16)).toBeGreaterThan(0.99 * halfElements);
    expect(elements(DataType.FLOAT)).toBeLessThan(0.01 * halfElements); // folded: ≈ halfElements of float32
  });

  for (const objective of ['dpo', 'npo'] as const) {
    it(`${objective.toUpperCase()}: ${compareRounded ? `equals the fp32 graph on weights rounded to fp16 within ${TO_ROUNDED}, and ` : ''}PyTorch float64 within ${TO_PYTORCH}`, async () => {
      const got = await run(session, half, referenceFeeds(ort, ref, half, objective) as Feeds);
      const toPytorch = worstError(got, (what) => (what === 'loss' ? ref.f32(`${objective}.loss`)[0] : ref.f32(`${objective}.${what}`)));
      expect(toPytorch.err, `worst: ${toPytorch.what}`).toBeLessThan(TO_PYTORCH);
      expect(got.grads.size).toBe(2 * settings.modules.length);
      if (!compareRounded) return;
      if (!rounded) {
        const graph = buildDpoGraph(roundedWeights(unet, new Set(half.float16!.converted), files), options);
        rounded = { graph, session: await ort.InferenceSession.create(graph.training, sessionOptions(graph)) };
      }
      const expected = await run(rounded.session, rounded.graph, referenceFeeds(ort, ref, rounded.graph, objective) as Feeds);
      const toRounded = worstError(got, (what) => (what === 'loss' ? expected.loss : what === 'model_diff' ? expected.modelDiff : what === 'ref_diff' ? expected.refDiff : expected.grads.get(what.slice(5))!));
      expect(toRounded.err, `worst: ${toRounded.what}`).toBeLessThan(TO_ROUNDED);
    });
  }
});

/** The UNet with the named weights replaced by their float16 roundings (inline float32). */
function roundedWeights(unet: ModelProto, names: Set<string>, files: Map<string, Uint8Array>): ModelProto {
  const initializer = unet.graph!.initializer!.map((t) => {
    if (!names.has(t.name!)) return t;
    const { dims, data } = readWeight(t, files);
    return makeTensor(t.name!, dims, roundToHalf(data));
  });
  return { ...unet, graph: { ...unet.graph!, initializer } };
}

// The DPO / NPO graph on REAL exported UNets against PyTorch (diffusers' UNet2DConditionModel with a PEFT LoRA at
// to_q/to_k/to_v/to_out.0, computed in float64):
//   - SD1.5: fixtures/sd15/export-diffusers/unet (diffusers' own ONNX export of the tiny seeded UNet) and
//     export-optimum/unet (optimum's, with an int64 timestep the graph casts to); the loss of diffusers'
//     train_diffusion_dpo.py, NPO the same with the pair swapped (scripts/fixtures/make_sd15_train_reference.py);
//   - SDXL: fixtures/sdxl/export-optimum/unet (optimum's SDXL export: added conditions text_embeds and time_ids, per
//     pair, with different time ids per pair); the loss of train_diffusion_dpo_sdxl.py / Diffusion-NPO's
//     train_sdxl.py, whose β_dpo carries a factor 0.5 (scripts/fixtures/make_sdxl_train_reference.py).
// torch 1.13 opset 14: GroupNorm as InstanceNormalization + Mul/Add, GEGLU through Erf, Softmax attention, Resize,
// Shape/Gather/Concat/Reshape patterns. Tolerance (issue 14): the loss and every LoRA gradient within 1e-4 relative
// (gradients as relative L2 per tensor); PyTorch's own float32 runs lie within 3.3e-6 (loss) and 1.9e-5 (gradients)
// of float64 (the references' `checks`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { readModel } from '../onnx/model-io.ts';
import { relL2 } from '../pipelines/reference-metrics.ts';
import { buildDpoGraph, type DpoGraph } from './dpo-graph.ts';
import { QUICK_START } from './quick-start.ts';
import { readTrainReference, referenceFeeds } from './train-reference.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const EXPORTS = [
  { name: 'SD1.5 diffusers export', fixture: 'sd15', dir: 'export-diffusers/unet', data: 'weights.pb', lora: 32 },
  { name: 'SD1.5 optimum export', fixture: 'sd15', dir: 'export-optimum/unet', data: 'model.onnx_data', lora: 32 },
  { name: 'SDXL optimum export', fixture: 'sdxl', dir: 'export-optimum/unet', data: 'model.onnx_data', lora: 136 },
];
const TOLERANCE = 1e-4;

describe.each(EXPORTS)('DPO / NPO graph on the real $name vs PyTorch (diffusers + PEFT)', ({ fixture, dir, data, lora }) => {
  const ref = readTrainReference(join(FIXTURES, fixture, 'train-reference.safetensors'));
  const settings = ref.meta('settings');
  const modules: string[] = settings.modules;
  let graph: DpoGraph;
  let session: ort.InferenceSession;

  beforeAll(async () => {
    const [c, h, w] = ref.shape('inputs.x_w').slice(1);
    const [l, d] = ref.shape('inputs.encoder_hidden_states').slice(1);
    const unetDir = join(FIXTURES, fixture, dir);
    graph = buildDpoGraph(readModel(readFileSync(join(unetDir, 'model.onnx'))), { rank: settings.rank, imageDims: [c, h, w], contextDims: [l, d] });
    const externalData = [{ path: data, data: new Uint8Array(readFileSync(join(unetDir, data))) }];
    session = await ort.InferenceSession.create(graph.training, { externalData, logSeverityLevel: 3, graphOptimizationLevel: 'basic', ...QUICK_START });
  });

  it('injects a LoRA at exactly the modules PEFT adapts, and takes the UNet\'s added conditions per pair', () => {
    expect(modules).toHaveLength(lora);
    expect(graph.lora.map((l) => l.site.modulePath).sort()).toEqual([...modules].sort());
    for (const l of graph.lora) {
      expect([graph.rank, l.site.inFeatures]).toEqual(ref.shape(`lora.${l.site.modulePath}.lora_A`));
      expect([l.site.outFeatures, graph.rank]).toEqual(ref.shape(`lora.${l.site.modulePath}.lora_B`));
    }
    const added = fixture === 'sdxl' ? [{ name: 'text_embeds', dims: [14] }, { name: 'time_ids', dims: [6] }] : [];
    expect(graph.added).toEqual(added);
  });

  for (const objective of ['dpo', 'npo'] as const) {
    it(`${objective.toUpperCase()}: loss, diffs and all ${2 * lora} LoRA gradients equal PyTorch's within ${TOLERANCE} relative`, async () => {
      // NPO is the DPO loss on the swapped pair (the official one-line flip); the graph is the same. β_dpo carries the
      // SDXL scripts' 0.5 (settings.beta_scale).
      const feeds = referenceFeeds(ort, ref, graph, objective) as Record<string, ort.Tensor>;
      const out = await session.run(feeds);
      const value = (name: string) => out[name].data as Float32Array;
      const loss = value('loss')[0];
      const expected = ref.f32(`${objective}.loss`)[0];
      expect(Math.abs(loss - expected) / expected).toBeLessThan(TOLERANCE);
      expect(relL2(value('model_diff'), ref.f32(`${objective}.model_diff`))).toBeLessThan(TOLERANCE);
      expect(relL2(value('ref_diff'), ref.f32(`${objective}.ref_diff`))).toBeLessThan(TOLERANCE);
      const errors = graph.lora.flatMap((s) => [s.a, s.b].map((name) => ({ name, err: relL2(value(`${name}_grad`), ref.f32(`${objective}.grad.${name}`)) })));
      expect(errors).toHaveLength(2 * modules.length);
      const worst = errors.reduce((p, q) => (q.err > p.err ? q : p));
      expect(worst.err, `worst gradient: ${worst.name}`).toBeLessThan(TOLERANCE);
    });
  }
});

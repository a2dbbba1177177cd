// A δ trained by this project (`npm run train` on the tiny SD1.5 fixture, fixtures/sd15/trained-delta-<format>) acts
// in our ONNX UNet as it acts in diffusers: scripts/fixtures/check_trained_delta_diffusers.py loaded each file with
// diffusers' own `load_lora_weights` (PEFT backend; all 32 LoRA layers landed, no unexpected key) and recorded the UNet
// output (trained-delta-reference.safetensors). Here the same file, parsed by our loader and baked into the exported
// graph's weights (θ + scale·up·down), run by onnxruntime-node, must give that output: max abs error 1e-4 (measured
// about 1e-6; PyTorch float32 vs ORT), while the δ moves the output by about 0.25, so a wrong key, scale or layout fails.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loraDeltaWeight, parseLora, readSafetensors } from '../lora/index.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { inlineExternalData, readModel, readWeight, writeModel } from '../onnx/model-io.ts';
import type { ModelProto } from '../onnx/proto.ts';
import { makeTensor } from '../onnx/tensor.ts';

const DIR = new URL('../../fixtures/sd15/', import.meta.url);
const bytes = (p: string) => new Uint8Array(readFileSync(new URL(p, DIR)));
const refs = readSafetensors(bytes('references.safetensors')).tensors;
const expected = readSafetensors(bytes('trained-delta-reference.safetensors')).tensors;
const ref = (name: string) => refs.get(name)!.data as Float32Array;

const model = readModel(bytes('export-diffusers/unet/model.onnx'));
const externals = new Map([['weights.pb', bytes('export-diffusers/unet/weights.pb')]]);
const sites = findLoraSites(model);

async function runUnet(lora?: Uint8Array): Promise<Float32Array> {
  const inline = inlineExternalData(model, externals);
  const baked = new Map<string, Float32Array>();
  if (lora) {
    const set = parseLora(lora, sites);
    expect(set.entries.size).toBe(sites.length);
    for (const site of sites) {
      const base = readWeight(inline.graph!.initializer!.find((t) => t.name === site.weightName)!, new Map()).data;
      const delta = loraDeltaWeight(set.entries.get(site.modulePath)!, site.layout === 'in-out' ? 'in-out' : 'out-in');
      baked.set(site.weightName, base.map((v, i) => v + delta[i]));
    }
  }
  const initializer = inline.graph!.initializer!.map((t) => (baked.has(t.name!) ? makeTensor(t.name!, t.dims!.map(Number), baked.get(t.name!)!) : t));
  const session = await ort.InferenceSession.create(writeModel({ ...inline, graph: { ...inline.graph!, initializer } } as ModelProto));
  const out = await session.run({
    sample: new ort.Tensor('float32', ref('unet.sample'), [2, 4, 8, 8]),
    timestep: new ort.Tensor('float32', Float32Array.from(ref('unet.timestep')), [2]),
    encoder_hidden_states: new ort.Tensor('float32', ref('unet.encoder_hidden_states'), [2, 77, 32]),
  });
  return out.out_sample.data as Float32Array;
}

const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe("our trained δ in diffusers' load_lora_weights (tiny SD1.5)", () => {
  it('has the attention projections diffusers takes', () => expect(sites).toHaveLength(32));

  for (const format of ['diffusers', 'kohya', 'peft']) {
    it(`${format} keys: our UNet with the δ equals diffusers' with it loaded`, async () => {
      const want = expected.get(`out_sample.${format}`)!.data as Float32Array;
      const ours = await runUnet(bytes(`trained-delta-${format}.safetensors`));
      expect(maxAbs(ours, want)).toBeLessThan(1e-4);
      expect(maxAbs(ref('unet.out_sample'), want)).toBeGreaterThan(0.1); // the δ is not a no-op
    }, 60_000);
  }
});

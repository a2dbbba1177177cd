// A δ trained by this project (`npm run train` on the tiny SD1.5 and SDXL fixtures, fixtures/<model>/trained-delta-
// <format>) acts in our ONNX UNet as it acts in diffusers: scripts/fixtures/check_trained_delta_diffusers.py (SD1.5)
// and check_trained_delta_diffusers_sdxl.py (SDXL) loaded each file with diffusers' own `load_lora_weights` (PEFT
// backend; every LoRA layer landed, no unexpected or missing key) and recorded the UNet output
// (trained-delta-reference.safetensors). Here the same file, parsed by our loader and baked into the exported graph's
// weights (θ + scale·up·down), run by onnxruntime-node, must give that output: max abs error 1e-4 (measured about 1e-6;
// PyTorch float32 vs ORT), while the δ moves the output by more than 0.1, so a wrong key, scale or layout fails.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loraDeltaWeight, parseLora, readSafetensors } from '../lora/index.ts';
import { findLoraSites } from '../onnx/lora-sites.ts';
import { inlineExternalData, readModel, readWeight, writeModel } from '../onnx/model-io.ts';
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { makeTensor } from '../onnx/tensor.ts';

const MODELS = [
  { name: 'SD1.5', dir: 'sd15', unet: 'export-diffusers/unet/model.onnx', data: 'weights.pb', sites: 32, formats: ['diffusers', 'kohya', 'peft'], added: [] },
  { name: 'SDXL', dir: 'sdxl', unet: 'export-optimum/unet/model.onnx', data: 'model.onnx_data', sites: 136, formats: ['diffusers', 'kohya-sgm', 'kohya', 'peft'], added: ['text_embeds', 'time_ids'] },
];

describe.each(MODELS)("our trained δ in diffusers' load_lora_weights (tiny $name)", ({ dir, unet, data, sites: count, formats, added }) => {
  const DIR = new URL(`../../fixtures/${dir}/`, import.meta.url);
  const bytes = (p: string) => new Uint8Array(readFileSync(new URL(p, DIR)));
  const refs = readSafetensors(bytes('references.safetensors')).tensors;
  const expected = readSafetensors(bytes('trained-delta-reference.safetensors')).tensors;
  const ref = (name: string) => refs.get(name)!.data as Float32Array;
  const model = readModel(bytes(unet));
  const externals = new Map([[data, bytes(unet.replace('model.onnx', data))]]);
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
    const t = ref('unet.timestep');
    const int64 = model.graph!.input!.find((v) => v.name === 'timestep')?.type?.tensorType?.elemType === DataType.INT64;
    const feeds: Record<string, ort.Tensor> = {
      sample: new ort.Tensor('float32', ref('unet.sample'), refs.get('unet.sample')!.shape),
      timestep: int64 ? new ort.Tensor('int64', BigInt64Array.from(t, (v) => BigInt(v)), [t.length]) : new ort.Tensor('float32', Float32Array.from(t), [t.length]),
      encoder_hidden_states: new ort.Tensor('float32', ref('unet.encoder_hidden_states'), refs.get('unet.encoder_hidden_states')!.shape),
    };
    for (const name of added) feeds[name] = new ort.Tensor('float32', ref(`unet.${name}`), refs.get(`unet.${name}`)!.shape);
    const out = await session.run(feeds);
    return out.out_sample.data as Float32Array;
  }

  const maxAbs = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

  it('has the attention projections diffusers takes', () => expect(sites).toHaveLength(count));

  if (dir === 'sd15') {
    // δ back in (issue 29): the file diffusers' own train_diffusion_dpo.py saved (scripts/fixtures/check_diffusers_roundtrip.py)
    it("the δ train_diffusion_dpo.py saved (pytorch_lora_weights.safetensors) acts as in diffusers' load_lora_weights", async () => {
      const want = readSafetensors(bytes('dpo-script-reference.safetensors')).tensors.get('out_sample')!.data as Float32Array;
      const ours = await runUnet(bytes('dpo-script-delta.safetensors'));
      expect(maxAbs(ours, want)).toBeLessThan(1e-4);
      expect(maxAbs(ref('unet.out_sample'), want)).toBeGreaterThan(0.1); // the δ is not a no-op
    });
  }

  for (const format of formats) {
    it(`${format} keys: our UNet with the δ equals diffusers' with it loaded`, async () => {
      const want = expected.get(`out_sample.${format}`)!.data as Float32Array;
      const ours = await runUnet(bytes(`trained-delta-${format}.safetensors`));
      expect(maxAbs(ours, want)).toBeLessThan(1e-4);
      expect(maxAbs(ref('unet.out_sample'), want)).toBeGreaterThan(0.1); // the δ is not a no-op
    });
  }
});

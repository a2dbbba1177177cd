// The committed SD1.5 fixture (fixtures/sd15, made by scripts/fixtures/make_sd15_fixture.py with diffusers,
// transformers, optimum, PEFT and PyTorch) read by the project's own code: the references file and its JSON index
// agree, the ONNX graphs have the inputs the index records, the three key formats of the δ LoRA give one ΔW through
// src/lora, and onnxruntime-node reproduces PyTorch's outputs on the exported graphs.
// Tolerances: ORT vs PyTorch in float32, relative L2 ≤ 1e-5 (the generator measured ≤ 2.4e-6 with ORT in Python);
// ΔW of the three formats equal within 1e-6 relative (kohya's up-weights are the diffusers ones × 2, scale 0.5: exact).
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loraDeltaWeight, parseLora, readSafetensors } from '../lora/index.ts';
import type { LoraTarget } from '../lora/index.ts';
import { readModel } from '../onnx/model-io.ts';

const DIR = new URL('../../fixtures/sd15/', import.meta.url);
const bytes = (p: string) => new Uint8Array(readFileSync(new URL(p, DIR)));
const path = (p: string) => new URL(p, DIR).pathname;

interface GraphIo { name: string; dtype: string; dims: (string | number)[] }
interface Index {
  tensors: Record<string, { dtype: string; values: string; shape: number[] }>;
  graphs: Record<string, { inputs: GraphIo[]; outputs: GraphIo[] }>;
  delta: { rank: number; modules: string[]; kohya_alpha: number };
}
const index = JSON.parse(readFileSync(new URL('references.json', DIR), 'utf8')) as Index;
const refs = readSafetensors(bytes('references.safetensors')).tensors;

function ref(name: string): Float32Array {
  const t = refs.get(name);
  if (!t) throw new Error(`references.safetensors has no ${name}`);
  return t.data;
}

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

const ONNX_DTYPES: Record<number, string> = { 1: 'float32', 6: 'int32', 7: 'int64', 10: 'float16' };

describe('fixtures/sd15 (made by diffusers / optimum / PyTorch)', () => {
  it('references.json lists exactly the tensors of references.safetensors, with their shapes', () => {
    expect([...refs.keys()].sort()).toEqual(Object.keys(index.tensors).sort());
    for (const [name, t] of Object.entries(index.tensors)) {
      expect(refs.get(name)!.shape, name).toEqual(t.shape);
    }
    // integer tensors are stored exactly as float32: token ids and pixels are whole numbers in range
    expect(ref('text.input_ids').every((v) => Number.isInteger(v) && v >= 0 && v < 49408)).toBe(true);
    expect(ref('gen.ddim.cfg.image_uint8').every((v) => Number.isInteger(v) && v >= 0 && v <= 255)).toBe(true);
  });

  it('the ONNX graphs have the input / output names and dtypes the index records', () => {
    for (const [file, io] of Object.entries(index.graphs)) {
      const graph = readModel(bytes(file)).graph!;
      const seen = (vs: typeof graph.input) => (vs ?? []).map((v) => ({ name: v.name, dtype: ONNX_DTYPES[v.type?.tensorType?.elemType ?? 0] }));
      expect(seen(graph.input), file).toEqual(io.inputs.map(({ name, dtype }) => ({ name, dtype })));
      expect(seen(graph.output), file).toEqual(io.outputs.map(({ name, dtype }) => ({ name, dtype })));
    }
    expect(index.graphs['export-diffusers/unet/model.onnx'].inputs[1]).toMatchObject({ name: 'timestep', dtype: 'float32' });
    expect(index.graphs['export-optimum/unet/model.onnx'].inputs[1]).toMatchObject({ name: 'timestep', dtype: 'int64' });
  });

  it('the δ LoRA in diffusers, PEFT and kohya keys gives one ΔW per module through src/lora', () => {
    // targets from the model's own weights (dpo-unet has the base UNet's shapes): [out, in] or [out, in, 1, 1]
    const unet = readSafetensors(bytes('dpo-unet/diffusion_pytorch_model.safetensors')).tensors;
    const targets: LoraTarget[] = index.delta.modules.map((m) => {
      const w = unet.get(`${m}.weight`)!;
      return { modulePath: m, outFeatures: w.shape[0], inFeatures: w.shape[1] };
    });
    expect(targets).toHaveLength(34);
    const sets = Object.fromEntries(['diffusers', 'peft', 'kohya'].map((f) => [f, parseLora(bytes(`delta-${f}.safetensors`), targets)]));
    expect(sets.diffusers.format).toBe('diffusers');
    expect(sets.peft.format).toBe('peft');
    expect(sets.kohya.format).toBe('kohya');
    for (const t of targets) {
      const base = sets.diffusers.entries.get(t.modulePath)!;
      expect(base.rank).toBe(index.delta.rank);
      expect(base.scale).toBe(1);
      expect(sets.peft.entries.get(t.modulePath)!.scale).toBe(1);
      expect(sets.kohya.entries.get(t.modulePath)!.scale).toBe(index.delta.kohya_alpha / index.delta.rank);
      const want = loraDeltaWeight(base);
      for (const f of ['peft', 'kohya']) {
        expect(relL2(loraDeltaWeight(sets[f].entries.get(t.modulePath)!), want), `${f} ${t.modulePath}`).toBeLessThan(1e-6);
      }
    }
    expect(sets.diffusers.entries.get('down_blocks.0.attentions.0.proj_in')!.conv1x1).toBe(true);
  });

  it('onnxruntime-node reproduces PyTorch on the text encoder, both UNet exports and the VAE decoder', async () => {
    const f32 = (name: string, dims: number[]) => new ort.Tensor('float32', ref(name), dims);
    const te = await ort.InferenceSession.create(path('export-diffusers/text_encoder/model.onnx'));
    const ids = new ort.Tensor('int32', Int32Array.from(ref('text.input_ids')), [2, 77]);
    const hidden = (await te.run({ input_ids: ids })).last_hidden_state.data as Float32Array;
    expect(relL2(hidden, ref('text.last_hidden_state'))).toBeLessThan(1e-5);

    const timesteps = ref('unet.timestep'); // [981, 501]
    const feeds = {
      sample: f32('unet.sample', [2, 4, 8, 8]),
      encoder_hidden_states: f32('unet.encoder_hidden_states', [2, 77, 32]),
    };
    const diffusersUnet = await ort.InferenceSession.create(path('export-diffusers/unet/model.onnx'));
    const a = await diffusersUnet.run({ ...feeds, timestep: new ort.Tensor('float32', Float32Array.from(timesteps), [2]) });
    expect(relL2(a.out_sample.data as Float32Array, ref('unet.out_sample'))).toBeLessThan(1e-5);
    const optimumUnet = await ort.InferenceSession.create(path('export-optimum/unet/model.onnx'));
    const b = await optimumUnet.run({ ...feeds, timestep: new ort.Tensor('int64', BigInt64Array.from(timesteps, (t) => BigInt(t)), [2]) });
    expect(relL2(b.out_sample.data as Float32Array, ref('unet.out_sample'))).toBeLessThan(1e-5);

    const vae = await ort.InferenceSession.create(path('export-diffusers/vae_decoder/model.onnx'));
    const img = await vae.run({ latent_sample: f32('vae_decoder.latent_sample', [1, 4, 8, 8]) });
    expect(relL2(img.sample.data as Float32Array, ref('vae_decoder.sample'))).toBeLessThan(1e-5);
  });
});

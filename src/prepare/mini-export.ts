// Test support: a miniature SD-shaped ONNX export written with our own graph builder, in either external-data layout
// (diffusers' `weights.pb`, optimum's `model.onnx_data`), with the anonymous initializers torch's exporter makes
// (`onnx::MatMul_N` [in, out] for a Linear, `onnx::Mul_N`/`onnx::Add_N` [C,1,1] for a GroupNorm) and a matching
// "DPO" UNet in diffusers' safetensors layout. It tests the plumbing and the refusals (corrupting a copy is cheap);
// the real exporter's output (fixtures/sd15, made by diffusers/torch) tests the assumptions about real exports.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGraphBuilder, float } from '../onnx/builder.ts';
import { externalizeWeights, writeModel } from '../onnx/model-io.ts';
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { writeSafetensors, type TensorToWrite } from '../lora/safetensors.ts';

function seeded(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

export const MINI = { channels: 4, hidden: 16, context: 32, tokens: 5, size: 8, vocab: 32 };

/** Torch-layout parameters of the mini UNet, by diffusers name. */
export type Params = Map<string, { shape: number[]; data: Float32Array }>;

export function miniUnetParams(seed: number): Params {
  const rand = seeded(seed);
  const { channels: c, hidden: h, context: d } = MINI;
  const p: Params = new Map();
  const add = (name: string, shape: number[], scale = 0.3) => p.set(name, { shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * scale) });
  add('conv_in.weight', [h, c, 3, 3]);
  add('conv_in.bias', [h]);
  add('down_blocks.0.resnets.0.norm1.weight', [h]);
  add('down_blocks.0.resnets.0.norm1.bias', [h]);
  add('down_blocks.0.attentions.0.proj_in.weight', [h, h, 1, 1]);
  add('down_blocks.0.attentions.0.proj_in.bias', [h]);
  add('down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight', [h, d]);
  add('conv_out.weight', [c, h, 3, 3]);
  add('conv_out.bias', [c]);
  return p;
}

/** The UNet graph as torch's exporter would lay it out: Linear transposed and anonymous, GroupNorm affine anonymous. */
export function miniUnet(params: Params): ModelProto {
  const { channels: c, hidden: h, context: d, tokens, size } = MINI;
  const g = createGraphBuilder('unet');
  const get = (k: string) => params.get(k)!.data;
  const x = g.input('sample', DataType.FLOAT, ['batch', c, size, size]);
  const t = g.input('timestep', DataType.FLOAT, ['batch']);
  const ehs = g.input('encoder_hidden_states', DataType.FLOAT, ['batch', tokens, d]);
  let y = g.scope('conv_in', () => g.op('Conv', [x, g.initializer('conv_in.weight', [h, c, 3, 3], get('conv_in.weight')), g.initializer('conv_in.bias', [h], get('conv_in.bias'))], { pads: [1, 1, 1, 1] }));
  y = g.scope('down_blocks.0', () => g.scope('resnets.0', () => g.scope('norm1', () => {
    const n = g.op('InstanceNormalization', [y, g.constant(new Float32Array(h).fill(1)), g.constant(new Float32Array(h))], { epsilon: float(1e-5) });
    const m = g.op('Mul', [n, g.initializer('onnx::Mul_101', [h, 1, 1], get('down_blocks.0.resnets.0.norm1.weight'))]);
    return g.op('Add', [m, g.initializer('onnx::Add_102', [h, 1, 1], get('down_blocks.0.resnets.0.norm1.bias'))]);
  })));
  y = g.scope('down_blocks.0', () => g.scope('attentions.0', () => {
    const p = g.scope('proj_in', () => g.op('Conv', [y, g.initializer('down_blocks.0.attentions.0.proj_in.weight', [h, h, 1, 1], get('down_blocks.0.attentions.0.proj_in.weight')), g.initializer('down_blocks.0.attentions.0.proj_in.bias', [h], get('down_blocks.0.attentions.0.proj_in.bias'))]));
    const k = g.scope('transformer_blocks.0', () => g.scope('attn2', () => g.scope('to_k', () => {
      const w = params.get('down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight')!.data;
      const wt = new Float32Array(d * h);
      for (let o = 0; o < h; o++) for (let i = 0; i < d; i++) wt[i * h + o] = w[o * d + i];
      return g.op('MatMul', [ehs, g.initializer('onnx::MatMul_103', [d, h], wt)]);
    })));
    const pooled = g.op('ReduceMean', [k], { axes: [1], keepdims: 0 });
    return g.op('Add', [p, g.op('Reshape', [pooled, g.int64s([-1, h, 1, 1])])]);
  }));
  const tt = g.op('Reshape', [t, g.int64s([-1, 1, 1, 1])]);
  y = g.op('Add', [y, g.op('Mul', [tt, g.scalar(0.001)])]);
  g.scope('conv_out', () => g.node('Conv', [y, g.initializer('conv_out.weight', [c, h, 3, 3], get('conv_out.weight')), g.initializer('conv_out.bias', [c], get('conv_out.bias'))], { pads: [1, 1, 1, 1] }, { outputs: ['out_sample'] }));
  g.output('out_sample', DataType.FLOAT, ['batch', c, size, size]);
  return g.build();
}

function miniTextEncoder(seed: number): ModelProto {
  const { context: d, tokens, vocab } = MINI;
  const rand = seeded(seed);
  const g = createGraphBuilder('text_encoder');
  const ids = g.input('input_ids', DataType.INT32, ['batch', tokens]);
  const table = g.initializer('text_model.embeddings.token_embedding.weight', [vocab, d], Float32Array.from({ length: vocab * d }, rand));
  g.node('Gather', [table, ids], {}, { outputs: ['last_hidden_state'] });
  g.output('last_hidden_state', DataType.FLOAT, ['batch', tokens, d]);
  return g.build();
}

function miniVaeDecoder(seed: number): ModelProto {
  const { channels: c, size } = MINI;
  const rand = seeded(seed);
  const g = createGraphBuilder('vae_decoder');
  const z = g.input('latent_sample', DataType.FLOAT, ['batch', c, size, size]);
  const y = g.scope('decoder', () => g.scope('conv_in', () => g.op('Conv', [z, g.initializer('decoder.conv_in.weight', [8, c, 3, 3], Float32Array.from({ length: 8 * c * 9 }, rand))], { pads: [1, 1, 1, 1] })));
  const up = g.scope('decoder', () => g.scope('up_blocks.0', () => g.scope('upsamplers.0', () => g.op('Resize', [y, '', g.constant(new Float32Array([1, 1, 2, 2]))], { mode: 'nearest' }))));
  g.scope('decoder', () => g.scope('conv_out', () => g.node('Conv', [up, g.initializer('decoder.conv_out.weight', [3, 8, 3, 3], Float32Array.from({ length: 3 * 8 * 9 }, rand))], { pads: [1, 1, 1, 1] }, { outputs: ['sample'] })));
  g.output('sample', DataType.FLOAT, ['batch', 3, size * 2, size * 2]);
  return g.build();
}

const SCHEDULER = `{
  "_class_name": "PNDMScheduler",
  "beta_end": 0.012,
  "beta_schedule": "scaled_linear",
  "beta_start": 0.00085,
  "lambda_min_clipped": -Infinity,
  "num_train_timesteps": 1000,
  "skip_prk_steps": true,
  "steps_offset": 1
}`;

/** Writes the mini export to `dir` in `layout`; returns the UNet's parameters (for η checks). */
export function writeMiniExport(dir: string, layout: 'diffusers' | 'optimum', seed = 1): Params {
  const params = miniUnetParams(seed);
  const location = layout === 'diffusers' ? 'weights.pb' : 'model.onnx_data';
  const write = (sub: string, model: ModelProto, external: boolean) => {
    mkdirSync(join(dir, sub), { recursive: true });
    if (!external) return writeFileSync(join(dir, sub, 'model.onnx'), writeModel(model));
    // 64 B: biases go external too (so small external tensors are exercised), shape constants stay inline for ORT.
    const { model: m, data } = externalizeWeights(model, location, 64);
    writeFileSync(join(dir, sub, 'model.onnx'), writeModel(m));
    writeFileSync(join(dir, sub, location), data);
  };
  write('unet', miniUnet(params), true);
  write('text_encoder', miniTextEncoder(seed + 1), false);
  write('vae_decoder', miniVaeDecoder(seed + 2), true);
  mkdirSync(join(dir, 'scheduler'), { recursive: true });
  writeFileSync(join(dir, 'scheduler', 'scheduler_config.json'), SCHEDULER);
  mkdirSync(join(dir, 'tokenizer'), { recursive: true });
  writeFileSync(join(dir, 'tokenizer', 'vocab.json'), JSON.stringify({ '<|startoftext|>': 0, '<|endoftext|>': 1, 'a</w>': 2 }));
  writeFileSync(join(dir, 'tokenizer', 'merges.txt'), '#version: 0.2\n');
  writeFileSync(join(dir, 'tokenizer', 'tokenizer_config.json'), JSON.stringify({ model_max_length: 77, do_lower_case: true }));
  writeFileSync(join(dir, 'model_index.json'), JSON.stringify({ _class_name: 'OnnxStableDiffusionPipeline' }));
  if (layout === 'optimum') {
    writeFileSync(join(dir, 'vae_decoder', 'config.json'), JSON.stringify({ scaling_factor: 0.13025, block_out_channels: [8, 8] }));
    writeFileSync(join(dir, 'unet', 'config.json'), JSON.stringify({ sample_size: MINI.size, in_channels: MINI.channels, cross_attention_dim: MINI.context }));
  }
  return params;
}

/** A "fine-tuned" UNet: every parameter moved by a small seeded offset, in a diffusers folder. */
export function writeMiniDpoUnet(dir: string, base: Params, seed = 99): Params {
  const rand = seeded(seed);
  const tuned: Params = new Map([...base].map(([k, v]) => [k, { shape: v.shape, data: v.data.map((x) => x + 0.01 * rand()) }]));
  mkdirSync(dir, { recursive: true });
  const tensors: Record<string, TensorToWrite> = Object.fromEntries([...tuned].map(([k, v]) => [k, { shape: v.shape, data: v.data }]));
  writeFileSync(join(dir, 'diffusion_pytorch_model.safetensors'), writeSafetensors(tensors));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ _class_name: 'UNet2DConditionModel' }));
  return tuned;
}

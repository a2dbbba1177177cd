// The embedded model's UNet: Stable Diffusion's UNet2DConditionModel in miniature, in pixel space. Same inputs and
// output as SD's ONNX exports (`sample`, `timestep`, `encoder_hidden_states` → `out_sample`), same module names
// (conv_in, time_embedding, down_blocks.N.{resnets,attentions,downsamplers}, mid_block, up_blocks.N, conv_out), so the
// code that loads, patches and trains it is the code that handles real SD exports.
import { createGraphBuilder } from '../onnx/builder.ts';
import { DataType, type ModelProto } from '../onnx/proto.ts';
import { conv2d, groupNorm, linear, silu, transformerBlock, type Layers, type ParamSource } from './layers.ts';

export interface UnetConfig {
  sampleSize: number;            // image height = width, pixels
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];    // one per resolution level
  crossAttention: boolean[];     // which levels have transformer blocks (CrossAttnDownBlock2D vs DownBlock2D)
  layersPerBlock: number;
  normGroups: number;
  attentionHeadDim: number;
  crossAttentionDim: number;     // text-encoder hidden size
  contextLength: number;         // tokens per prompt
}

// The committed embedded model's levels (issue 12): a thin 32² level without attention (it is the costliest
// resolution), attention at 16² and 8². `npm run unet:cost` compares configurations by multiply-adds.
export const TINY_UNET: UnetConfig = {
  sampleSize: 32, inChannels: 3, outChannels: 3,
  blockOutChannels: [16, 32, 64], crossAttention: [false, true, true], layersPerBlock: 1,
  normGroups: 8, attentionHeadDim: 32, crossAttentionDim: 64, contextLength: 16,
};

interface Feature { name: string; channels: number; size: number }

export function buildUnet(config: UnetConfig, params: ParamSource): ModelProto {
  const g = createGraphBuilder('unet');
  const l: Layers = { g, params };
  const { sampleSize: size, inChannels, outChannels, blockOutChannels: chans } = config;
  const sample = g.input('sample', DataType.FLOAT, ['batch', inChannels, size, size]);
  const timestep = g.input('timestep', DataType.FLOAT, ['batch']);
  const context = g.input('encoder_hidden_states', DataType.FLOAT, ['batch', config.contextLength, config.crossAttentionDim]);

  const temb = timeEmbedding(l, timestep, chans[0], chans[0] * 4);
  let h: Feature = { name: conv2d(l, 'conv_in', sample, inChannels, chans[0], 3), channels: chans[0], size };
  const skips: Feature[] = [h];

  chans.forEach((out, level) => g.scope(`down_blocks.${level}`, () => {
    for (let i = 0; i < config.layersPerBlock; i++) {
      h = resnet(l, `resnets.${i}`, h, out, temb, config);
      if (config.crossAttention[level]) h = transformer2d(l, `attentions.${i}`, h, context, config);
      skips.push(h);
    }
    if (level < chans.length - 1) {
      h = { ...h, name: g.scope('downsamplers.0', () => conv2d(l, 'conv', h.name, h.channels, h.channels, 3, 2)), size: h.size / 2 };
      skips.push(h);
    }
  }));

  g.scope('mid_block', () => {
    const top = chans.length - 1;
    h = resnet(l, 'resnets.0', h, chans[top], temb, config);
    h = transformer2d(l, 'attentions.0', h, context, config);
    h = resnet(l, 'resnets.1', h, chans[top], temb, config);
  });

  [...chans].reverse().forEach((out, upLevel) => g.scope(`up_blocks.${upLevel}`, () => {
    const level = chans.length - 1 - upLevel;
    for (let i = 0; i <= config.layersPerBlock; i++) {
      const skip = skips.pop()!;
      const joined = { name: g.op('Concat', [h.name, skip.name], { axis: 1 }), channels: h.channels + skip.channels, size: h.size };
      h = resnet(l, `resnets.${i}`, joined, out, temb, config);
      if (config.crossAttention[level]) h = transformer2d(l, `attentions.${i}`, h, context, config);
    }
    if (level > 0) {
      h = g.scope('upsamplers.0', () => {
        const up = g.op('Resize', [h.name, '', g.constant(new Float32Array([1, 1, 2, 2]))], { mode: 'nearest' });
        return { name: conv2d(l, 'conv', up, h.channels, h.channels, 3), channels: h.channels, size: h.size * 2 };
      });
    }
  }));

  const normed = silu(l, groupNorm(l, 'conv_norm_out', h.name, h.channels, config.normGroups, h.size, h.size));
  const out = conv2d(l, 'conv_out', normed, h.channels, outChannels, 3);
  g.node('Identity', [out], {}, { outputs: ['out_sample'] });
  g.output('out_sample', DataType.FLOAT, ['batch', outChannels, size, size]);
  return g.build();
}

/** diffusers' Timesteps(flip_sin_to_cos=True, freq_shift=0) + TimestepEmbedding: [cos, sin] features → MLP. */
function timeEmbedding(l: Layers, timestep: string, features: number, embedDim: number): string {
  const { g } = l;
  const half = features / 2;
  const frequencies = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const angles = g.op('Mul', [g.op('Unsqueeze', [timestep, g.int64s([1])]), g.constant(frequencies, [1, half])]);
  const sinusoid = g.op('Concat', [g.op('Cos', [angles]), g.op('Sin', [angles])], { axis: 1 });
  return g.scope('time_embedding', () => linear(l, 'linear_2', silu(l, linear(l, 'linear_1', sinusoid, features, embedDim)), embedDim, embedDim));
}

/** diffusers' ResnetBlock2D: GroupNorm-SiLU-Conv, + projected time embedding, GroupNorm-SiLU-Conv, 1×1 shortcut if channels change. */
function resnet(l: Layers, name: string, x: Feature, outC: number, temb: string, config: UnetConfig): Feature {
  const { g } = l;
  return g.scope(name, () => {
    const groups = config.normGroups;
    let h = conv2d(l, 'conv1', silu(l, groupNorm(l, 'norm1', x.name, x.channels, groups, x.size, x.size)), x.channels, outC, 3);
    const t = linear(l, 'time_emb_proj', silu(l, temb), config.blockOutChannels[0] * 4, outC);
    h = g.op('Add', [h, g.op('Unsqueeze', [t, g.int64s([2, 3])])]);
    h = conv2d(l, 'conv2', silu(l, groupNorm(l, 'norm2', h, outC, groups, x.size, x.size)), outC, outC, 3, 1, true);
    const shortcut = x.channels === outC ? x.name : conv2d(l, 'conv_shortcut', x.name, x.channels, outC, 1);
    return { name: g.op('Add', [shortcut, h]), channels: outC, size: x.size };
  });
}

/** diffusers' Transformer2DModel: GroupNorm, proj_in (linear), transformer blocks over H·W tokens, proj_out, residual. */
function transformer2d(l: Layers, name: string, x: Feature, context: string, config: UnetConfig): Feature {
  const { g } = l;
  const { channels: c, size } = x;
  return g.scope(name, () => {
    const normed = groupNorm(l, 'norm', x.name, c, config.normGroups, size, size);
    const tokens = g.op('Transpose', [g.op('Reshape', [normed, g.int64s([0, c, size * size])])], { perm: [0, 2, 1] });
    let h = linear(l, 'proj_in', tokens, c, c);
    h = transformerBlock(l, 'transformer_blocks.0', h, context, c, config.crossAttentionDim, c / config.attentionHeadDim);
    h = linear(l, 'proj_out', h, c, c);
    const image = g.op('Reshape', [g.op('Transpose', [h], { perm: [0, 2, 1] }), g.int64s([0, c, size, size])]);
    return { name: g.op('Add', [image, x.name]), channels: c, size };
  });
}


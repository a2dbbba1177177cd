// The parameter list of a diffusers UNet2DConditionModel of the SD1.5 / SDXL families, computed from its config.json the way
// diffusers builds the modules (unets/unet_2d_condition.py, unet_2d_blocks.py, resnet.py, transformer_2d.py,
// attention.py, embeddings.py): names and PyTorch shapes of every tensor. What memory a model needs (the
// bench:sd15 table, the page's "will it fit" check) follows from it without the 3.4 GB of weights.
// Covered: CrossAttnDownBlock2D / DownBlock2D / UNetMidBlock2DCrossAttn / UpBlock2D / CrossAttnUpBlock2D, ResNet
// blocks with time embedding, Transformer2DModel with conv or linear proj_in/proj_out, GEGLU feed-forward, per-block
// transformer depths and SDXL's "text_time" added embedding (add_embedding).
// The ONNX export holds the same tensors (Linear weights transposed, GroupNorm scale/bias as [C,1,1]): same sizes.

export interface UnetConfig {
  in_channels: number;
  out_channels: number;
  block_out_channels: number[];
  layers_per_block: number;
  cross_attention_dim: number;
  down_block_types: string[];
  up_block_types: string[];
  /** Transformer blocks per attention (SD1.5: 1), or one count per down block (SDXL: [1, 2, 10]; mid = last, up = reversed). */
  transformer_layers_per_block?: number | number[];
  /** SDXL: "text_time", an add_embedding MLP from projection_class_embeddings_input_dim to the time-embedding width. */
  addition_embed_type?: string | null;
  projection_class_embeddings_input_dim?: number;
  /** SD1.5: false (1×1 conv proj_in/proj_out); SD2: true (Linear). */
  use_linear_projection?: boolean;
}

/** runwayml/stable-diffusion-v1-5 unet/config.json (the fields that decide shapes). */
export const SD15_UNET_CONFIG: UnetConfig = {
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [320, 640, 1280, 1280],
  layers_per_block: 2,
  cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  transformer_layers_per_block: 1,
  use_linear_projection: false,
};

/** The SD1.5 UNet's parameter count (sum of numel over its state dict). */
export const SD15_UNET_PARAMETERS = 859_520_964;

/** stabilityai/stable-diffusion-xl-base-1.0 unet/config.json (the fields that decide shapes). */
export const SDXL_UNET_CONFIG: UnetConfig = {
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [320, 640, 1280],
  layers_per_block: 2,
  cross_attention_dim: 2048,
  down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'],
  up_block_types: ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'],
  transformer_layers_per_block: [1, 2, 10],
  use_linear_projection: true,
  addition_embed_type: 'text_time',
  projection_class_embeddings_input_dim: 2816,
};

/** The SDXL base UNet's parameter count. */
export const SDXL_UNET_PARAMETERS = 2_567_463_684;

/**
 * What a tensor is, for the memory table: `attn-proj` are the Linear weights of to_q/to_k/to_v/to_out.0 (the sites
 * of the released NPO LoRA); `linear`/`conv` other weights; `norm` GroupNorm/LayerNorm scale and shift; `bias` the rest.
 */
export type ParamRole = 'attn-proj' | 'linear' | 'conv' | 'norm' | 'bias';

export interface UnetParam {
  name: string;
  shape: number[];
  role: ParamRole;
}

export const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function linear(out: UnetParam[], name: string, inF: number, outF: number, bias = true, role: ParamRole = 'linear') {
  out.push({ name: `${name}.weight`, shape: [outF, inF], role });
  if (bias) out.push({ name: `${name}.bias`, shape: [outF], role: 'bias' });
}

function conv(out: UnetParam[], name: string, inC: number, outC: number, k: number) {
  out.push({ name: `${name}.weight`, shape: [outC, inC, k, k], role: 'conv' });
  out.push({ name: `${name}.bias`, shape: [outC], role: 'bias' });
}

function norm(out: UnetParam[], name: string, c: number) {
  out.push({ name: `${name}.weight`, shape: [c], role: 'norm' }, { name: `${name}.bias`, shape: [c], role: 'norm' });
}

const TIME_EMBED_FACTOR = 4; // time_embed_dim = block_out_channels[0] * 4

function resnet(out: UnetParam[], name: string, inC: number, outC: number, temb: number) {
  norm(out, `${name}.norm1`, inC);
  conv(out, `${name}.conv1`, inC, outC, 3);
  linear(out, `${name}.time_emb_proj`, temb, outC);
  norm(out, `${name}.norm2`, outC);
  conv(out, `${name}.conv2`, outC, outC, 3);
  if (inC !== outC) conv(out, `${name}.conv_shortcut`, inC, outC, 1);
}

function attention(out: UnetParam[], name: string, dim: number, contextDim: number) {
  // Attention(query_dim, cross_attention_dim, bias=False for q/k/v, out_bias=True)
  linear(out, `${name}.to_q`, dim, dim, false, 'attn-proj');
  linear(out, `${name}.to_k`, contextDim, dim, false, 'attn-proj');
  linear(out, `${name}.to_v`, contextDim, dim, false, 'attn-proj');
  linear(out, `${name}.to_out.0`, dim, dim, true, 'attn-proj');
}

function transformer2d(out: UnetParam[], name: string, c: number, cfg: UnetConfig, depth: number) {
  norm(out, `${name}.norm`, c);
  const proj = (n: string) => (cfg.use_linear_projection ? linear(out, `${name}.${n}`, c, c) : conv(out, `${name}.${n}`, c, c, 1));
  proj('proj_in');
  for (let t = 0; t < depth; t++) {
    const b = `${name}.transformer_blocks.${t}`;
    norm(out, `${b}.norm1`, c);
    attention(out, `${b}.attn1`, c, c);
    norm(out, `${b}.norm2`, c);
    attention(out, `${b}.attn2`, c, cfg.cross_attention_dim);
    norm(out, `${b}.norm3`, c);
    linear(out, `${b}.ff.net.0.proj`, c, c * 4 * 2); // GEGLU: hidden 4·c, doubled for the gate
    linear(out, `${b}.ff.net.2`, c * 4, c);
  }
  proj('proj_out');
}

/** Every parameter tensor of the UNet, in diffusers' module order. */
export function unetParameters(cfg: UnetConfig): UnetParam[] {
  const out: UnetParam[] = [];
  const ch = cfg.block_out_channels;
  const temb = ch[0] * TIME_EMBED_FACTOR;
  const blocks = ch.length;
  conv(out, 'conv_in', cfg.in_channels, ch[0], 3);
  linear(out, 'time_embedding.linear_1', ch[0], temb);
  linear(out, 'time_embedding.linear_2', temb, temb);
  if (cfg.addition_embed_type === 'text_time') {
    if (!cfg.projection_class_embeddings_input_dim) throw new Error('unetParameters: addition_embed_type "text_time" needs projection_class_embeddings_input_dim');
    linear(out, 'add_embedding.linear_1', cfg.projection_class_embeddings_input_dim, temb);
    linear(out, 'add_embedding.linear_2', temb, temb);
  } else if (cfg.addition_embed_type) {
    throw new Error(`unetParameters: addition_embed_type ${cfg.addition_embed_type} is not supported ("text_time" is)`);
  }
  const tl = cfg.transformer_layers_per_block ?? 1;
  const depths = Array.isArray(tl) ? tl : ch.map(() => tl);
  if (depths.length !== blocks) throw new Error(`unetParameters: transformer_layers_per_block has ${depths.length} entries for ${blocks} blocks`);

  let outC = ch[0];
  cfg.down_block_types.forEach((type, i) => {
    const inC = outC;
    outC = ch[i];
    const cross = checkBlockType(type, 'Down');
    for (let j = 0; j < cfg.layers_per_block; j++) {
      resnet(out, `down_blocks.${i}.resnets.${j}`, j === 0 ? inC : outC, outC, temb);
      if (cross) transformer2d(out, `down_blocks.${i}.attentions.${j}`, outC, cfg, depths[i]);
    }
    if (i < blocks - 1) conv(out, `down_blocks.${i}.downsamplers.0.conv`, outC, outC, 3);
  });

  const mid = ch[blocks - 1];
  resnet(out, 'mid_block.resnets.0', mid, mid, temb);
  transformer2d(out, 'mid_block.attentions.0', mid, cfg, depths[blocks - 1]);
  resnet(out, 'mid_block.resnets.1', mid, mid, temb);

  const reversed = [...ch].reverse();
  let prevOut = reversed[0];
  cfg.up_block_types.forEach((type, i) => {
    const upOut = reversed[i];
    const upIn = reversed[Math.min(i + 1, blocks - 1)];
    const cross = checkBlockType(type, 'Up');
    const layers = cfg.layers_per_block + 1;
    for (let j = 0; j < layers; j++) {
      const skip = j === layers - 1 ? upIn : upOut;
      const resIn = j === 0 ? prevOut : upOut;
      resnet(out, `up_blocks.${i}.resnets.${j}`, resIn + skip, upOut, temb);
      if (cross) transformer2d(out, `up_blocks.${i}.attentions.${j}`, upOut, cfg, depths[blocks - 1 - i]);
    }
    if (i < blocks - 1) conv(out, `up_blocks.${i}.upsamplers.0.conv`, upOut, upOut, 3);
    prevOut = upOut;
  });

  norm(out, 'conv_norm_out', ch[0]);
  conv(out, 'conv_out', ch[0], cfg.out_channels, 3);
  return out;
}

function checkBlockType(type: string, dir: 'Down' | 'Up'): boolean {
  if (type === `CrossAttn${dir}Block2D`) return true;
  if (type === `${dir}Block2D`) return false;
  throw new Error(`unetParameters: block type ${type} is not one of CrossAttn${dir}Block2D, ${dir}Block2D`);
}

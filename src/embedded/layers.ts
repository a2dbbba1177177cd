// Neural-network layers as ONNX subgraphs, named like their diffusers/PyTorch modules so that exported node names and
// weight names read `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q` exactly as in Stable Diffusion.
// Linear weights are stored [in, out] and applied with MatMul, as in diffusers' ONNX exports (DESIGN §4).
import type { GraphBuilder } from '../onnx/builder.ts';
import { createRandom } from '../train/random.ts';

/** Where parameters come from: trained values by name, or a seeded initialisation for a fresh model. */
export interface ParamSource {
  get(name: string, dims: number[], init: ParamInit): Float32Array;
}
export type ParamInit = { kind: 'zeros' } | { kind: 'ones' } | { kind: 'normal'; std: number };

/** Deterministic parameter initialisation (a fresh, untrained model), optionally overridden by trained values. */
export function paramSource(seed: number, trained: ReadonlyMap<string, Float32Array> = new Map()): ParamSource & { names: string[] } {
  const random = createRandom(seed);
  const names: string[] = [];
  return {
    names,
    get(name, dims, init) {
      names.push(name);
      const count = dims.reduce((a, b) => a * b, 1);
      const given = trained.get(name);
      if (given) {
        if (given.length !== count) throw new Error(`parameter ${name}: expected ${count} values for [${dims}], got ${given.length}`);
        return given;
      }
      if (init.kind === 'zeros') return new Float32Array(count);
      if (init.kind === 'ones') return new Float32Array(count).fill(1);
      return Float32Array.from({ length: count }, () => random.normal() * init.std);
    },
  };
}

export interface Layers {
  g: GraphBuilder;
  params: ParamSource;
}

function param({ g, params }: Layers, local: string, dims: number[], init: ParamInit): string {
  const path = g.modulePath();
  const name = path ? `${path}.${local}` : local;
  return g.initializer(name, dims, params.get(name, dims, init));
}

/** nn.Linear as MatMul with a [in, out] weight (+ bias). */
export function linear(l: Layers, name: string, x: string, inF: number, outF: number, bias = true): string {
  return l.g.scope(name, () => {
    const w = param(l, 'weight', [inF, outF], { kind: 'normal', std: 1 / Math.sqrt(inF) });
    const y = l.g.op('MatMul', [x, w]);
    return bias ? l.g.op('Add', [y, param(l, 'bias', [outF], { kind: 'zeros' })]) : y;
  });
}

export function conv2d(l: Layers, name: string, x: string, inC: number, outC: number, kernel: number, stride = 1, zeroInit = false): string {
  return l.g.scope(name, () => {
    const fanIn = inC * kernel * kernel;
    const w = param(l, 'weight', [outC, inC, kernel, kernel], zeroInit ? { kind: 'zeros' } : { kind: 'normal', std: 1 / Math.sqrt(fanIn) });
    const b = param(l, 'bias', [outC], { kind: 'zeros' });
    const pad = (kernel - 1) >> 1;
    return l.g.op('Conv', [x, w, b], { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad] });
  });
}

/**
 * nn.GroupNorm on [B, C, H, W] in the form exporters emit below opset 18: reshape to [B, G, C/G·H·W], InstanceNorm
 * with unit scale, reshape back, then the per-channel affine. Runs on every ORT backend and is differentiable by our
 * autodiff without a GroupNormalization rule.
 */
export function groupNorm(l: Layers, name: string, x: string, channels: number, groups: number, height: number, width: number): string {
  const { g } = l;
  return g.scope(name, () => {
    const grouped = g.op('Reshape', [x, g.int64s([0, groups, -1])]);
    const normed = g.op('InstanceNormalization', [grouped, g.constant(new Float32Array(groups).fill(1)), g.constant(new Float32Array(groups))], { epsilon: 1e-5 });
    const back = g.op('Reshape', [normed, g.int64s([0, channels, height, width])]);
    const gamma = g.op('Reshape', [param(l, 'weight', [channels], { kind: 'ones' }), g.int64s([channels, 1, 1])]);
    const beta = g.op('Reshape', [param(l, 'bias', [channels], { kind: 'zeros' }), g.int64s([channels, 1, 1])]);
    return g.op('Add', [g.op('Mul', [back, gamma]), beta]);
  });
}

export function layerNorm(l: Layers, name: string, x: string, features: number): string {
  return l.g.scope(name, () =>
    l.g.op('LayerNormalization', [x, param(l, 'weight', [features], { kind: 'ones' }), param(l, 'bias', [features], { kind: 'zeros' })], { axis: -1, epsilon: 1e-5 }),
  );
}

export function silu({ g }: Layers, x: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x])]);
}

/** GELU, exact form: x·Φ(x) = 0.5·x·(1 + erf(x/√2)). */
export function gelu({ g }: Layers, x: string): string {
  const erf = g.op('Erf', [g.op('Mul', [x, g.scalar(Math.SQRT1_2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.scalar(0.5)]), g.op('Add', [erf, g.scalar(1)])]);
}

/**
 * diffusers' Attention: to_q/to_k/to_v/to_out.0 on [B, N, C] tokens (context [B, M, Cc] for cross-attention),
 * scaled dot-product attention over `heads` heads.
 */
export function attention(l: Layers, name: string, x: string, context: string | undefined, dim: number, contextDim: number, heads: number): string {
  const { g } = l;
  const headDim = dim / heads;
  return g.scope(name, () => {
    const kv = context ?? x;
    const kvDim = context ? contextDim : dim;
    const split = (t: string) => g.op('Transpose', [g.op('Reshape', [t, g.int64s([0, -1, heads, headDim])])], { perm: [0, 2, 1, 3] });
    const q = split(linear(l, 'to_q', x, dim, dim, false));
    const k = split(linear(l, 'to_k', kv, kvDim, dim, false));
    const v = split(linear(l, 'to_v', kv, kvDim, dim, false));
    const kT = g.op('Transpose', [k], { perm: [0, 1, 3, 2] });
    const scores = g.op('Mul', [g.op('MatMul', [q, kT]), g.scalar(1 / Math.sqrt(headDim))]);
    const mixed = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
    const merged = g.op('Reshape', [g.op('Transpose', [mixed], { perm: [0, 2, 1, 3] }), g.int64s([0, -1, dim])]);
    return g.scope('to_out', () => linear(l, '0', merged, dim, dim));
  });
}

/** diffusers' BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward, each pre-normed with a residual. */
export function transformerBlock(l: Layers, name: string, x: string, context: string, dim: number, contextDim: number, heads: number): string {
  const { g } = l;
  return g.scope(name, () => {
    let h = g.op('Add', [attention(l, 'attn1', layerNorm(l, 'norm1', x, dim), undefined, dim, contextDim, heads), x]);
    h = g.op('Add', [attention(l, 'attn2', layerNorm(l, 'norm2', h, dim), context, dim, contextDim, heads), h]);
    const inner = dim * 4;
    const normed = layerNorm(l, 'norm3', h, dim);
    const ff = g.scope('ff', () =>
      g.scope('net', () => {
        const projected = g.scope('0', () => linear(l, 'proj', normed, dim, inner * 2));
        const [value, gate] = g.node('Split', [projected, g.int64s([inner, inner])], { axis: -1 }, { outputs: 2 });
        return linear(l, '2', g.op('Mul', [value, gelu(l, gate)]), inner, dim);
      }),
    );
    return g.op('Add', [ff, h]);
  });
}

// The Diffusion-DPO training graph (DESIGN §2; Wallace et al. 2023, Eq. 14 in diffusers' form) for a batch of B pairs:
//   x_t = √ᾱ_t·x + √(1−ᾱ_t)·ε                              (ε and t shared by the two images of a pair)
//   L(x) = mean((target − ε_θ(x_t, c, t))²)                 (target = ε, or v = √ᾱ·ε − √(1−ᾱ)·x for v-prediction)
//   model_diff = L_θ(w) − L_θ(l),  ref_diff = L_ref(w) − L_ref(l)
//   loss = mean over pairs of −log σ(−β·(model_diff − ref_diff)) = mean softplus(β·(model_diff − ref_diff))
//   accuracy = share of pairs with model_diff − ref_diff < 0 (the policy prefers the winner more than the reference),
//              ties counting ½ (so it reads 0.5 at the start, where the LoRA's B = 0 makes policy = reference)
// written as Softplus, not Log(Sigmoid), which overflows at β = 2500. NPO is this graph fed with w and l swapped (the
// trainer's `reverse` flag); the graph itself knows nothing about it.
// The scale follows the official NPO code (G-U-N/Diffusion-NPO DPO-DPO-NPO/train_sd15.py: logits = ref_diff −
// model_diff, loss = −logsigmoid(β·logits), ties ½ in the accuracy), DESIGN §2 and diffusers' research script
// train_diffusion_dpo.py (commit 071190d; checked against PyTorch in dpo-graph-real.test.ts). The original
// DiffusionDPO train.py uses −0.5·β_dpo instead: its β_dpo = 2500 is β = 1250 here; so do the SDXL scripts
// (train_diffusion_dpo_sdxl.py, Diffusion-NPO train_sdxl.py), whose β_dpo the trainer halves (dpo-beta.ts).
//
// Policy and reference are two copies of the UNet's nodes in one graph: the policy copy carries the injected LoRA
// (scale `lora_scale`), the reference copy is the untouched UNet. Both read the same initializers, so the weights are
// stored once. Two copies rather than one 4B batch with per-sample scales: the reference copy does not depend on A/B,
// so autodiff emits no backward work for it (a masked batch would backpropagate through all 4B samples); each copy
// runs on the 2B batch [x_w; x_l]. One session run gives loss, accuracy and every LoRA gradient.
// Added conditions: every other UNet input (SDXL's `text_embeds` [B, 1280] and `time_ids` [B, 6], diffusers'
// added_cond_kwargs) becomes a per-pair input of the same name, doubled for [x_w; x_l] as the SDXL scripts'
// `.repeat(2, 1)` and fed to both copies.
import type { InferenceSession } from 'onnxruntime-common';
import { createGraphBuilder, type GraphBuilder } from '../onnx/builder.ts';
import { buildGradientModel } from '../onnx/autodiff/index.ts';
import { ATTENTION_TARGETS, findLoraSites } from '../onnx/lora-sites.ts';
import { externalLocations, readModel, writeModel, type ExternalFiles } from '../onnx/model-io.ts';
import { injectLora, LORA_SCALE_INPUT, type LoraInputs } from '../onnx/passes/inject-lora.ts';
import { FLOAT16_WEIGHTS_SESSION_EXTRA, storeWeightsAsFloat16, type Float16Weights } from '../onnx/passes/float16-weights.ts';
import { chunkAttention, hasChunkedAttention, planAttentionChunks, SCORE_CHUNK_BYTES } from '../onnx/passes/chunk-attention.ts';
import { unetSegmentOf, type CheckpointMode } from './unet-segments.ts';
import { DataType, OnnxError, type GraphProto, type ModelProto, type NodeProto } from '../onnx/proto.ts';

type SessionOptions = InferenceSession.SessionOptions;

/** The graph's inputs besides the LoRA ones (all float32). B is the symbolic dim 'pairs'. */
export const DPO_INPUTS = {
  winner: 'x_w', // [B, C, H, W] clean images, in the model's value range ([-1, 1] for the embedded model)
  loser: 'x_l', // [B, C, H, W]
  noise: 'noise', // [B, C, H, W] ε, shared by the pair
  alphaBar: 'alpha_bar', // [B] ᾱ_t per pair
  timestep: 'timestep', // [B] t per pair (what the UNet's time embedding reads)
  context: 'context', // [B, L, D] text-encoder hidden states
  beta: 'beta_dpo', // [] β_dpo
  scale: LORA_SCALE_INPUT, // [] LoRA scale (alpha / rank)
} as const;
export const DPO_OUTPUTS = ['loss', 'accuracy', 'model_diff', 'ref_diff'] as const;

/** A per-pair UNet input besides sample, timestep and context (SDXL: text_embeds [14…1280], time_ids [6]). */
export interface AddedCondition { name: string; dims: number[] }

export interface UnetIo { sample: string; timestep: string; context: string; output: string }
export const SD_UNET_IO: UnetIo = { sample: 'sample', timestep: 'timestep', context: 'encoder_hidden_states', output: 'out_sample' };

export interface DpoGraphOptions {
  rank: number;
  targets?: readonly string[];
  predictionType?: 'epsilon' | 'v_prediction';
  io?: UnetIo;
  /**
   * [C, H, W] of one latent and [L, D] of one context, for UNets whose inputs are declared with symbolic dims (real
   * exports: `sample` [batch, channels, height, width]); written into the UNet's input shapes. Default: the declared dims.
   */
  imageDims?: readonly number[];
  contextDims?: readonly number[];
  /** Activation checkpointing of the policy UNet (unet-segments.ts); default 'off'. */
  checkpoint?: CheckpointMode;
  /**
   * Attention in query chunks (src/onnx/passes/chunk-attention.ts), each chunk's scores at most this many bytes for
   * `batch` pairs (2·batch samples per UNet copy), and each chunk of the policy recomputed before its backward pass
   * (unet-segments.ts): no [2B·heads, hw, hw] score tensor is alive, forward or backward. Default SCORE_CHUNK_BYTES;
   * Infinity: attention as exported.
   */
  attentionChunkBytes?: number;
  /** Pairs per step the attention chunks are planned for (the plan and the trainer's batch); default 1. */
  batch?: number;
  /**
   * How the frozen UNet weights are stored: 'fp32' as exported (default), or 'fp16': every large float32 weight as
   * float16, cast to float32 where each node reads it (src/onnx/passes/float16-weights.ts); the LoRA factors, their
   * gradients and everything the graph computes stay float32. Both copies read the same float16 weights.
   */
  weights?: WeightsPrecision;
}

export const WEIGHTS_PRECISIONS = ['fp32', 'fp16'] as const;
export type WeightsPrecision = (typeof WEIGHTS_PRECISIONS)[number];

export interface DpoGraph {
  /** Forward model: loss, accuracy, model_diff [B], ref_diff [B]. */
  forward: ModelProto;
  /** Serialized forward model plus `<A or B>_grad` outputs for every LoRA input. */
  training: Uint8Array;
  lora: LoraInputs[];
  rank: number;
  /** [C, H, W] of one image, [L, D] of one context, read from the UNet's declared input shapes. */
  imageDims: number[];
  contextDims: number[];
  /** The UNet's added conditions, in its input order: graph inputs of the same names, [B, ...dims] float32. */
  added: AddedCondition[];
  weights: WeightsPrecision;
  /** With weights 'fp16': the converted weights (their external file is `float16.file(<the UNet's external files>)`). */
  float16?: Float16Weights;
}

/**
 * The session options for `graph.training`: the caller's, with ORT's memory pattern off unless the caller says
 * otherwise, and for fp16 weights their float16 file (made from `files`, the UNet's external data), only the external
 * files the graph still reads, the optimizers left off (float16-weights.ts), and ORT's CPU arena off: it keeps what
 * each step allocated, and the weight-sized Cast outputs fragment it (scripts/bench-fp16-weights.ts: with the arena a
 * step of fp16 weights grew the process more than one of fp32 weights).
 * The memory pattern (a block per run laid out from the first run's allocations) held about twice the values' peak
 * on a training step: the tiny SD1.5 at 512², batch 1, peaked at 5.9 GB resident with it and 3.4 GB without, at the
 * same or better speed (9.4 s vs 13.6 s a step; the embedded model's batch of 8: 403 vs 571 MB, the same 0.6 s), so
 * the memory plan (memory-plan.ts) can bound the step.
 */
export function dpoSessionOptions(graph: DpoGraph, options: SessionOptions, files: ExternalFiles = new Map()): SessionOptions {
  const withoutPattern = { enableMemPattern: false, ...options };
  if (!graph.float16) return withoutPattern;
  const read = new Set(externalLocations(graph.float16.model));
  const externalData = [...(options.externalData ?? []).filter((e) => read.has(typeof e === 'string' ? e : e.path)), { path: graph.float16.location, data: graph.float16.file(files) }];
  const optimization = { ...(options.extra?.optimization as object | undefined), ...FLOAT16_WEIGHTS_SESSION_EXTRA.optimization };
  return { enableCpuMemArena: false, ...withoutPattern, externalData, extra: { ...options.extra, optimization } };
}

/**
 * The UNet needs static C, H, W, L, D in its input shapes. Its weights may stay in external data: the DPO graph keeps
 * the initializers as they are (shared by both copies), so its session needs the same external files (ORT's
 * `externalData` session option) and stays far below protobuf's 2 GB for SD-sized UNets.
 */
export function buildDpoGraph(model: ModelProto, options: DpoGraphOptions): DpoGraph {
  const io = options.io ?? SD_UNET_IO;
  const unet = chunkedAttention(withStaticDims(withStaticDims(model, io.sample, options.imageDims), io.context, options.contextDims), options);
  const sites = findLoraSites(unet, options.targets ?? ATTENTION_TARGETS);
  const injected = injectLora(unet, sites, options.rank);
  const imageDims = staticDims(unet.graph!, io.sample);
  const contextDims = staticDims(unet.graph!, io.context);
  const added = addedConditions(unet.graph!, io);

  const pre = createGraphBuilder('dpo');
  const ins = declareInputs(pre, imageDims, contextDims);
  const prepared = pre.scope('dpo_in', () => noisedBatch(pre, ins));
  const addedFeeds = Object.fromEntries(added.map((c) => {
    const doubled = pre.op('Concat', [pre.input(c.name, DataType.FLOAT, ['pairs', ...c.dims]), c.name], { axis: 0 });
    return [c.name, castTo(pre, doubled, inputType(unet.graph!, c.name))];
  }));
  const post = createGraphBuilder('dpo');
  const policyOut = 'policy/out_sample';
  const refOut = 'ref/out_sample';
  post.scope('dpo_loss', () => lossAndAccuracy(post, prepared, policyOut, refOut, options.predictionType ?? 'epsilon'));

  // optimum's SD exports take an int64 timestep; ours a float one. The trainer always feeds float t.
  const t2 = castTo(pre, prepared.t2, inputType(unet.graph!, io.timestep));
  const feeds = { [io.sample]: prepared.xt, [io.timestep]: t2, [io.context]: prepared.c2, ...addedFeeds };
  const shared = new Set([...(injected.model.graph!.initializer ?? []).map((t) => t.name!), ...injected.model.graph!.input!.map((v) => v.name!)]);
  const policy = copyNodes(injected.model.graph!, 'policy', feeds, shared, { [io.output]: policyOut });
  const reference = copyNodes(unet.graph!, 'ref', feeds, shared, { [io.output]: refOut });

  const a = pre.build().graph!;
  const b = post.build().graph!;
  const loraInputs = injected.model.graph!.input!.filter((v) => injected.inputs.some((i) => i.a === v.name || i.b === v.name) || v.name === LORA_SCALE_INPUT);
  const forward: ModelProto = {
    ...unet,
    graph: {
      name: 'diffusion_dpo',
      node: [...a.node!, ...policy, ...reference, ...b.node!],
      input: [...a.input!, ...loraInputs],
      output: b.output,
      initializer: [...a.initializer!, ...b.initializer!, ...injected.model.graph!.initializer!],
    },
  };
  const wrt = injected.inputs.flatMap((i) => [i.a, i.b]);
  const gradients = buildGradientModel(writeModel(forward), { loss: 'loss', wrt, recompute: unetSegmentOf(options.checkpoint ?? 'off', hasChunkedAttention(unet)) });
  const weights = options.weights ?? 'fp32';
  if (!WEIGHTS_PRECISIONS.includes(weights)) throw new OnnxError(`DPO graph: weights must be one of ${WEIGHTS_PRECISIONS.join(', ')}, got ${String(weights)}`);
  // After autodiff: the backward nodes read the weights too, and each read gets its own Cast.
  const float16 = weights === 'fp16' ? storeWeightsAsFloat16(readModel(gradients)) : undefined;
  const training = float16 ? writeModel(float16.model) : gradients;
  return { forward, training, lora: injected.inputs, rank: options.rank, imageDims, contextDims, added, weights, ...(float16 ? { float16 } : {}) };
}

/** The UNet with its attention in query chunks for 2·batch samples (each UNet copy's batch), where they are large. */
function chunkedAttention(unet: ModelProto, options: DpoGraphOptions): ModelProto {
  const budget = options.attentionChunkBytes ?? SCORE_CHUNK_BYTES;
  if (budget === Infinity) return unet;
  const samples = 2 * (options.batch ?? 1);
  const stored = new Set((unet.graph!.initializer ?? []).map((t) => t.name));
  const dims = Object.fromEntries((unet.graph!.input ?? []).filter((v) => !stored.has(v.name)).map((v) => {
    const declared = (v.type?.tensorType?.shape?.dim ?? []).slice(1).map((d) => (d.dimParam ? NaN : Number(d.dimValue ?? NaN)));
    return [v.name!, [samples, ...declared]];
  }).filter(([, d]) => (d as number[]).every(Number.isFinite)));
  return chunkAttention(unet, planAttentionChunks(unet, dims, budget));
}

function inputType(graph: GraphProto, name: string): number {
  return graph.input!.find((v) => v.name === name)?.type?.tensorType?.elemType ?? DataType.FLOAT;
}

function castTo(g: GraphBuilder, value: string, type: number): string {
  return type === DataType.FLOAT ? value : g.op('Cast', [value], { to: type });
}

/** The UNet's inputs other than sample, timestep and context (SDXL's added conditions), with their static dims. */
function addedConditions(graph: GraphProto, io: UnetIo): AddedCondition[] {
  const core = new Set([io.sample, io.timestep, io.context]);
  const stored = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((v) => !core.has(v.name!) && !stored.has(v.name)).map((v) => {
    const type = v.type?.tensorType?.elemType;
    if (type !== DataType.FLOAT && type !== DataType.FLOAT16) throw new OnnxError(`DPO graph: the UNet input ${v.name} is not a float tensor; only float added conditions (SDXL's text_embeds, time_ids) are supported`);
    return { name: v.name!, dims: staticDims(graph, v.name!) };
  });
}

/** A copy of the model whose input `name` is declared [batch, ...dims] (the batch dim kept as it was). */
export function withStaticDims(model: ModelProto, name: string, dims: readonly number[] | undefined): ModelProto {
  if (!dims) return model;
  if (!dims.every((d) => Number.isSafeInteger(d) && d > 0)) throw new OnnxError(`DPO graph: dims [${dims}] for ${name} must be positive integers`);
  const graph = model.graph!;
  const input = graph.input?.find((v) => v.name === name);
  const declared = input?.type?.tensorType?.shape?.dim;
  if (!input || !declared) throw new OnnxError(`DPO graph: the UNet has no input named ${name} with a declared shape`);
  if (declared.length !== dims.length + 1) throw new OnnxError(`DPO graph: input ${name} has rank ${declared.length}; [batch, ${dims}] has rank ${dims.length + 1}`);
  declared.slice(1).forEach((d, i) => {
    const fixed = d.dimValue !== undefined && d.dimValue !== null && !d.dimParam ? Number(d.dimValue) : null;
    if (fixed !== null && fixed > 0 && fixed !== dims[i]) throw new OnnxError(`DPO graph: input ${name} dim ${i + 1} is ${fixed} in the UNet, not ${dims[i]}`);
  });
  const shape = { dim: [declared[0], ...dims.map((d) => ({ dimValue: d }))] };
  const typed = { ...input, type: { ...input.type, tensorType: { ...input.type!.tensorType, shape } } };
  return { ...model, graph: { ...graph, input: graph.input!.map((v) => (v === input ? typed : v)) } };
}

function staticDims(graph: GraphProto, name: string): number[] {
  const input = graph.input?.find((v) => v.name === name);
  if (!input) throw new OnnxError(`DPO graph: the UNet has no input named ${name}`);
  const dims = (input.type?.tensorType?.shape?.dim ?? []).slice(1).map((d) => Number(d.dimValue ?? 0));
  if (!dims.length || dims.some((d) => !(d > 0))) throw new OnnxError(`DPO graph: input ${name} needs static dims after the batch dim (it has [${dims}])`);
  return dims;
}

function declareInputs(g: GraphBuilder, imageDims: number[], contextDims: number[]) {
  const image = ['pairs', ...imageDims];
  return {
    xw: g.input(DPO_INPUTS.winner, DataType.FLOAT, image),
    xl: g.input(DPO_INPUTS.loser, DataType.FLOAT, image),
    noise: g.input(DPO_INPUTS.noise, DataType.FLOAT, image),
    alphaBar: g.input(DPO_INPUTS.alphaBar, DataType.FLOAT, ['pairs']),
    t: g.input(DPO_INPUTS.timestep, DataType.FLOAT, ['pairs']),
    context: g.input(DPO_INPUTS.context, DataType.FLOAT, ['pairs', ...contextDims]),
    beta: g.input(DPO_INPUTS.beta, DataType.FLOAT, []),
  };
}

/** [x_w; x_l] noised with the pair's shared ε and ᾱ (diffusers' DDPMScheduler.add_noise), and the doubled t and c. */
function noisedBatch(g: GraphBuilder, ins: ReturnType<typeof declareInputs>) {
  const twice = (v: string) => g.op('Concat', [v, v], { axis: 0 });
  const ab = g.op('Reshape', [ins.alphaBar, g.int64s([-1, 1, 1, 1])]);
  const sa = twice(g.op('Sqrt', [ab]));
  const sb = twice(g.op('Sqrt', [g.op('Sub', [g.scalar(1), ab])]));
  const x = g.op('Concat', [ins.xw, ins.xl], { axis: 0 });
  const noise = twice(ins.noise);
  const xt = g.op('Add', [g.op('Mul', [sa, x]), g.op('Mul', [sb, noise])]);
  return { xt, x, noise, sa, sb, t2: twice(ins.t), c2: twice(ins.context), beta: ins.beta };
}

function lossAndAccuracy(g: GraphBuilder, p: ReturnType<typeof noisedBatch>, policyOut: string, refOut: string, prediction: 'epsilon' | 'v_prediction') {
  const target = prediction === 'epsilon' ? p.noise : g.op('Sub', [g.op('Mul', [p.sa, p.noise]), g.op('Mul', [p.sb, p.x])]);
  const diffOf = (out: string) => {
    const err = g.op('Sub', [out, target]);
    const perSample = g.op('ReduceMean', [g.op('Mul', [err, err])], { axes: [1, 2, 3], keepdims: 0 }); // [2B]
    const halves = g.op('Reshape', [perSample, g.int64s([2, -1])]);
    const pick = (i: number) => g.op('Gather', [halves, g.constant(BigInt64Array.of(BigInt(i)), [])], { axis: 0 });
    return g.op('Sub', [pick(0), pick(1)]); // L(w) − L(l), [B]
  };
  g.node('Identity', [diffOf(policyOut)], {}, { outputs: ['model_diff'] });
  g.node('Identity', [diffOf(refOut)], {}, { outputs: ['ref_diff'] });
  const inside = g.op('Sub', ['model_diff', 'ref_diff']);
  g.node('ReduceMean', [g.op('Softplus', [g.op('Mul', [inside, p.beta])])], { keepdims: 0 }, { outputs: ['loss'] });
  const indicator = (op: string) => g.op('Cast', [g.op(op, [inside, g.scalar(0)])], { to: DataType.FLOAT });
  const preferred = g.op('Add', [indicator('Less'), g.op('Mul', [indicator('Equal'), g.scalar(0.5)])]);
  g.node('ReduceMean', [preferred], { keepdims: 0 }, { outputs: ['accuracy'] });
  g.output('loss', DataType.FLOAT, []);
  g.output('accuracy', DataType.FLOAT, []);
  g.output('model_diff', DataType.FLOAT, ['pairs']);
  g.output('ref_diff', DataType.FLOAT, ['pairs']);
}

/**
 * The graph's nodes with every value renamed `<prefix>/<name>`, except: graph inputs in `feeds` (→ the given value),
 * `shared` names (initializers and LoRA inputs, kept), and `outputs` (→ the given name).
 */
function copyNodes(graph: GraphProto, prefix: string, feeds: Record<string, string>, shared: Set<string>, outputs: Record<string, string>): NodeProto[] {
  const rename = (v: string) => (v === '' ? v : feeds[v] ?? outputs[v] ?? (shared.has(v) && !(v in feeds) ? v : `${prefix}/${v}`));
  const declared = new Set((graph.input ?? []).map((v) => v.name!));
  for (const name of Object.keys(feeds)) if (!declared.has(name)) throw new OnnxError(`DPO graph: the UNet has no input ${name}`);
  return (graph.node ?? []).map((n) => ({
    ...n,
    name: `${prefix}${n.name?.startsWith('/') ? '' : '/'}${n.name ?? ''}`,
    input: (n.input ?? []).map(rename),
    output: (n.output ?? []).map(rename),
  }));
}

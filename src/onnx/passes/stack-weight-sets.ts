// Stacked weight sets: one UNet call serves samples on different weights (issue 6: "NPO must cost no more per step
// than ordinary CFG"). NPO-CFG runs the positive branch on θ_pos and the negative one on θ_neg (paper Eq. 10); with
// the LoRA-site weights as plain graph inputs (initializers-to-inputs.ts) that is two calls per step. This pass turns
// each site weight W into an input holding all sets, [S, ...W.dims] (set 0 = θ_pos, set 1 = θ_neg), and adds one
// int64 input `weight_set` [batch] naming each sample's set. Each site then multiplies every sample by its own
// weight, gathered per sample: the same FLOPs as before, plus one Gather of the site's weights (tiny next to the
// convolutions), so [uncond on θ_neg, cond on θ_pos] is one batch like diffusers' [uncond, cond].
//   MatMul, W [in, out], x [B, ..., in]:             x · Gather(W, set) (unsqueezed to x's rank), when x's rank is known
//                                                    statically; else Reshape(x, [B, -1, in]) · Gather(W, set) and back
//   Gemm, x [B·M, in], transB 0/1, alpha, beta·C:     the same batched MatMul on Gather(W, set) (transposed for transB)
//   1×1 Conv, W [out, in, 1, 1], group 1:            Pad and stride x first, then Gather(W, set)[B, out, in] · x[B, in, H·W]
// Precondition: the site weights are graph inputs; each is read by its site node only. The rewritten node keeps
// its output name, so every consumer stays untouched; new nodes follow it (the graph stays topologically sorted).
import { createShapeEnv, inferNode, type ShapeEnv } from '../autodiff/shapes.ts';
import { makeAttribute, valueInfo } from '../builder.ts';
import type { LoraSite } from '../lora-sites.ts';
import { DataType, OnnxError, int, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from '../proto.ts';
import { createNodeEmitter } from './node-emitter.ts';

export const WEIGHT_SET_INPUT = 'weight_set';

export function stackWeightSets(model: ModelProto, sites: readonly LoraSite[], setCount = 2): ModelProto {
  if (!Number.isSafeInteger(setCount) || setCount < 1) throw new OnnxError(`stackWeightSets: set count ${setCount} must be a positive integer`);
  const graph = model.graph!;
  const inputs = new Map((graph.input ?? []).map((v) => [v.name ?? '', v]));
  if (inputs.has(WEIGHT_SET_INPUT)) throw new OnnxError(`stackWeightSets: the graph already has an input named ${WEIGHT_SET_INPUT}`);
  checkSoleConsumers(graph.node ?? [], sites);
  const bySite = new Map(sites.map((s) => [s.nodeName, s]));
  const initializers: TensorProto[] = [...(graph.initializer ?? [])];
  const nodes: NodeProto[] = [];
  const done = new Set<string>();
  const shapes = createShapeEnv(graph); // x's rank decides whether a MatMul site needs reshapes around it
  for (const node of graph.node ?? []) {
    const site = bySite.get(node.name ?? '');
    const xRank = site && rankOf(shapes, node.input?.[0]);
    inferNode(node, shapes);
    if (!site) {
      nodes.push(node);
      continue;
    }
    if (!inputs.has(site.weightName)) throw new OnnxError(`stackWeightSets: ${site.weightName} (${site.modulePath}) is not a graph input; promote it first (initializersToInputs)`);
    nodes.push(...rewrite(node, site, xRank, (t) => initializers.push(t)));
    done.add(site.nodeName);
  }
  const missing = sites.filter((s) => !done.has(s.nodeName));
  if (missing.length) throw new OnnxError(`stackWeightSets: no node named ${missing.slice(0, 3).map((s) => s.nodeName).join(', ')} in the graph`);

  const stacked = new Set(sites.map((s) => s.weightName));
  const input = (graph.input ?? []).map((v) => {
    if (!stacked.has(v.name ?? '')) return v;
    const site = sites.find((s) => s.weightName === v.name)!;
    return valueInfo(site.weightName, v.type?.tensorType?.elemType ?? DataType.FLOAT, [setCount, ...site.dims]);
  });
  return {
    ...model,
    graph: { ...graph, node: nodes, initializer: initializers, input: [...input, valueInfo(WEIGHT_SET_INPUT, DataType.INT64, ['batch'])] },
  };
}

/** A weight shared by two nodes would get one node's per-sample weights only: refuse rather than guess. */
function checkSoleConsumers(nodes: NodeProto[], sites: readonly LoraSite[]) {
  const weights = new Map(sites.map((s) => [s.weightName, s]));
  for (const node of nodes) {
    for (const name of node.input ?? []) {
      const site = weights.get(name);
      if (site && node.name !== site.nodeName) throw new OnnxError(`stackWeightSets: ${name} is read by ${node.name} as well as by ${site.nodeName}; a shared weight cannot be stacked`);
    }
  }
}

const rankOf = (env: ShapeEnv, name: string | undefined) => (name ? env.types.get(name)?.dims?.length : undefined);
const attrOf = (node: NodeProto, name: string): AttributeProto | undefined => node.attribute?.find((a) => a.name === name);
const ints = (node: NodeProto, name: string) => (attrOf(node, name)?.ints ?? []).map(int);

/** The site node replaced by its per-sample-weight form, ending in the original output name. */
function rewrite(node: NodeProto, site: LoraSite, xRank: number | undefined, addInit: (t: TensorProto) => void): NodeProto[] {
  const { nodes: out, emit, ints: constant, scalar } = createNodeEmitter(`${node.name}_stacked`, addInit);
  const [x, w, bias] = node.input ?? [];
  const y = node.output![0];
  const perSample = emit('Gather', [w, WEIGHT_SET_INPUT], 'weights', [makeAttribute('axis', 0)]); // [B, ...W.dims]
  const batch = () => emit('Shape', [WEIGHT_SET_INPUT], 'batch'); // [B], for the branches that reshape
  // x's rows regrouped per sample: [B·M, in] or [B, …, in] → [B, M, in] (batch-major, as the batch is laid out).
  const batchRows = () => emit('Reshape', [x, emit('Concat', [batch(), constant('rows_shape', [-1, site.inFeatures])], 'rows_shape_full', [makeAttribute('axis', 0)])], 'rows');
  const transpose = (t: string) => emit('Transpose', [t], 'weights_T', [makeAttribute('perm', [0, 2, 1])]);

  if (site.opType === 'MatMul' && xRank !== undefined && xRank >= 3) {
    // x [B, ..., in] · W [B, 1…, in, out]: MatMul broadcasts the batch; no reshapes, nothing but the Gather added.
    const axes = Array.from({ length: xRank - 3 }, (_, i) => i + 1);
    const weights = axes.length ? emit('Unsqueeze', [perSample, constant('unsqueeze_axes', axes)], 'weights_unsqueezed') : perSample;
    emit('MatMul', [x, weights], 'matmul', [], y);
  } else if (site.opType === 'MatMul') {
    const rows = batchRows();
    const product = emit('MatMul', [rows, perSample], 'matmul'); // [B, M, out]
    const leading = emit('Slice', [emit('Shape', [x], 'x_shape'), constant('zero', [0]), constant('minus_one', [-1])], 'leading');
    emit('Reshape', [product, emit('Concat', [leading, constant('out', [site.outFeatures])], 'y_shape', [makeAttribute('axis', 0)])], 'y', [], y);
  } else if (site.opType === 'Gemm') {
    if (int(attrOf(node, 'transA')?.i) === 1) throw new OnnxError(`stackWeightSets: ${node.name} is a Gemm with transA = 1; not supported`);
    const weights = int(attrOf(node, 'transB')?.i) === 1 ? transpose(perSample) : perSample; // [B, in, out]
    const rows = batchRows();
    const alpha = attrOf(node, 'alpha')?.f ?? 1;
    const beta = attrOf(node, 'beta')?.f ?? 1;
    const last = (isLast: boolean) => (isLast ? y : undefined); // the chain's final node takes over the original output
    let result = emit('Reshape', [emit('MatMul', [rows, weights], 'matmul'), constant('flat_shape', [-1, site.outFeatures])], 'flat', [], last(alpha === 1 && !bias));
    if (alpha !== 1) result = emit('Mul', [result, scalar('alpha_value', alpha)], 'alpha', [], last(!bias));
    if (bias) emit('Add', [result, beta === 1 ? bias : emit('Mul', [bias, scalar('beta_value', beta)], 'beta')], 'bias', [], y);
  } else {
    if (int(attrOf(node, 'group')?.i ?? 1) !== 1) throw new OnnxError(`stackWeightSets: ${node.name} is a grouped 1×1 Conv; not supported`);
    const autoPad = attrOf(node, 'auto_pad')?.s;
    if (autoPad && !['NOTSET', ''].includes(new TextDecoder().decode(autoPad))) throw new OnnxError(`stackWeightSets: ${node.name} uses auto_pad; give explicit pads`);
    // A 1×1 kernel reads one pixel per output: padding then striding x first leaves a plain per-pixel product.
    let input = x;
    const pads = ints(node, 'pads');
    if (pads.some((p) => p !== 0)) input = emit('Pad', [input, constant('pads', [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]])], 'padded');
    const strides = ints(node, 'strides');
    if (strides.some((s) => s !== 1)) {
      input = emit('Slice', [input, constant('slice_starts', [0, 0]), constant('slice_ends', [2 ** 53 - 1, 2 ** 53 - 1]), constant('slice_axes', [2, 3]), constant('slice_steps', strides)], 'strided');
    }
    const weights = emit('Reshape', [perSample, constant('w_shape', [0, site.outFeatures, site.inFeatures])], 'weights_3d');
    const pixels = emit('Reshape', [input, constant('pixels_shape', [0, site.inFeatures, -1])], 'pixels'); // [B, in, H·W]
    let product = emit('MatMul', [weights, pixels], 'matmul'); // [B, out, H·W]
    if (bias) product = emit('Add', [product, emit('Reshape', [bias, constant('bias_shape', [site.outFeatures, 1])], 'bias_column')], 'bias');
    const spatial = emit('Slice', [emit('Shape', [input], 'x_shape'), constant('two', [2]), constant('four', [4])], 'spatial');
    emit('Reshape', [product, emit('Concat', [batch(), constant('out', [site.outFeatures]), spatial], 'y_shape', [makeAttribute('axis', 0)])], 'y', [], y);
  }
  return out;
}

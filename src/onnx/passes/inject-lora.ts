// LoRA injection: rewrites each target y = x·W into y = x·W + s·(x·Aᵀ)·Bᵀ, with A [r, in] (LoRA down) and
// B [out, r] (LoRA up) as new graph inputs `<modulePath>.lora_A` / `.lora_B` and one scalar input `lora_scale` = s
// shared by all sites. Training differentiates the graph with respect to A and B (DESIGN decision 2); the same graph
// with s = 0 is the frozen reference, bit for bit the original (x·W + 0 = x·W).
// Forms handled (the sites of findLoraSites):
//   MatMul, W [in, out] (diffusers exports):  x·W + s·MatMul(MatMul(x, Aᵀ), Bᵀ) for x [..., in]
//   Gemm, transB 0 or 1, x [N, in]:           Gemm(...) + s·Gemm(Gemm(x, A, transB=1), B, transB=1)
//   1×1 Conv, W [out, in, 1, 1], group 1:     Conv(...) + s·Conv(Conv(x, A as [r, in, 1, 1], same strides/pads), B as [out, r, 1, 1])
// The Conv form stays NCHW (two 1×1 Convs) rather than transposing to NHWC: no layout shuffles, and Conv's weight
// gradient is already a rule of our autodiff. Gemm with transA = 1 or alpha ≠ 1 is refused (LoRA would no longer equal
// merging ΔW = s·B·A into W). The original node keeps its name and inputs; its output is renamed and the LoRA sum takes
// over the old output name, so every consumer stays untouched. New nodes follow the original node (graph stays sorted).
import { makeAttribute, valueInfo } from '../builder.ts';
import type { LoraSite } from '../lora-sites.ts';
import { DataType, OnnxError, int, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from '../proto.ts';
import { createNodeEmitter } from './node-emitter.ts';

export const LORA_SCALE_INPUT = 'lora_scale';

export interface LoraInputs {
  site: LoraSite;
  /** Graph input names of A [rank, in] and B [out, rank]. */
  a: string;
  b: string;
}

export interface InjectedLora {
  model: ModelProto;
  inputs: LoraInputs[];
  rank: number;
  scaleInput: string;
}

export const loraInputNames = (modulePath: string) => ({ a: `${modulePath}.lora_A`, b: `${modulePath}.lora_B` });

export function injectLora(model: ModelProto, sites: readonly LoraSite[], rank: number): InjectedLora {
  if (!Number.isSafeInteger(rank) || rank < 1) throw new OnnxError(`injectLora: rank ${rank} must be a positive integer`);
  if (!sites.length) throw new OnnxError('injectLora: no LoRA sites given (findLoraSites found no target weights?)');
  const graph = model.graph!;
  const taken = new Set([...(graph.input ?? []).map((v) => v.name), ...(graph.initializer ?? []).map((t) => t.name),
    ...(graph.node ?? []).flatMap((n) => [...(n.output ?? []), n.name])]);
  const bySite = new Map(sites.map((s) => [s.nodeName, s]));
  const found = new Set<string>();
  const nodes: NodeProto[] = [];
  const initializers = [...(graph.initializer ?? [])];
  const inputs: LoraInputs[] = [];
  const elemType = weightType(model, sites[0]);
  for (const node of graph.node ?? []) {
    const site = bySite.get(node.name ?? '');
    if (!site) {
      nodes.push(node);
      continue;
    }
    found.add(site.nodeName);
    const names = loraInputNames(site.modulePath);
    for (const n of [names.a, names.b]) if (taken.has(n)) throw new OnnxError(`injectLora: the graph already has a value named ${n}`);
    const emitted = rewrite(node, site, names, rank, (t) => initializers.push(t));
    nodes.push(...emitted);
    inputs.push({ site, ...names });
  }
  const missing = sites.filter((s) => !found.has(s.nodeName));
  if (missing.length) throw new OnnxError(`injectLora: no node named ${missing.map((s) => s.nodeName).slice(0, 3).join(', ')} in the graph`);
  if (taken.has(LORA_SCALE_INPUT)) throw new OnnxError(`injectLora: the graph already has a value named ${LORA_SCALE_INPUT}`);

  const newInputs = [
    ...inputs.flatMap(({ site, a, b }) => [valueInfo(a, elemType, [rank, site.inFeatures]), valueInfo(b, elemType, [site.outFeatures, rank])]),
    valueInfo(LORA_SCALE_INPUT, elemType, []),
  ];
  return {
    model: { ...model, graph: { ...graph, node: nodes, initializer: initializers, input: [...(graph.input ?? []), ...newInputs] } },
    inputs,
    rank,
    scaleInput: LORA_SCALE_INPUT,
  };
}

function weightType(model: ModelProto, site: LoraSite): number {
  const graph = model.graph!;
  const init = (graph.initializer ?? []).find((t) => t.name === site.weightName);
  const input = (graph.input ?? []).find((v) => v.name === site.weightName);
  return init?.dataType ?? input?.type?.tensorType?.elemType ?? DataType.FLOAT;
}

const attrOf = (node: NodeProto, name: string): AttributeProto | undefined => node.attribute?.find((a) => a.name === name);

/** The original node (output renamed) followed by the LoRA branch and the sum under the old output name. */
function rewrite(node: NodeProto, site: LoraSite, names: { a: string; b: string }, rank: number, addInit: (t: TensorProto) => void): NodeProto[] {
  const prefix = `${node.name}_lora`;
  const y = node.output![0];
  const base = `${prefix}/base`;
  const x = node.input![0];
  const { nodes: out, emit, ints: constant } = createNodeEmitter(prefix, addInit, [{ ...node, output: [base, ...(node.output ?? []).slice(1)] }]);
  let delta: string;
  if (site.opType === 'MatMul') {
    const aT = emit('Transpose', [names.a], 'A_T', [makeAttribute('perm', [1, 0])]);
    const bT = emit('Transpose', [names.b], 'B_T', [makeAttribute('perm', [1, 0])]);
    delta = emit('MatMul', [emit('MatMul', [x, aT], 'down'), bT], 'up');
  } else if (site.opType === 'Gemm') {
    if (int(attrOf(node, 'transA')?.i) === 1) throw new OnnxError(`injectLora: ${node.name} is a Gemm with transA = 1; not supported`);
    const alpha = attrOf(node, 'alpha')?.f;
    if (alpha !== undefined && alpha !== null && alpha !== 1) throw new OnnxError(`injectLora: ${node.name} is a Gemm with alpha = ${alpha}; only alpha = 1 is supported`);
    const transB = [makeAttribute('transB', 1)];
    delta = emit('Gemm', [emit('Gemm', [x, names.a], 'down', transB), names.b], 'up', transB);
  } else {
    if (int(attrOf(node, 'group')?.i ?? 1) !== 1) throw new OnnxError(`injectLora: ${node.name} is a grouped 1×1 Conv; not supported`);
    const kept = (node.attribute ?? []).filter((a) => ['strides', 'pads', 'auto_pad'].includes(a.name ?? ''));
    const a4 = emit('Reshape', [names.a, constant('A_shape', [rank, site.inFeatures, 1, 1])], 'A_4d');
    const b4 = emit('Reshape', [names.b, constant('B_shape', [site.outFeatures, rank, 1, 1])], 'B_4d');
    delta = emit('Conv', [emit('Conv', [x, a4], 'down', kept), b4], 'up');
  }
  const scaled = emit('Mul', [delta, LORA_SCALE_INPUT], 'scaled');
  emit('Add', [base, scaled], 'add', [], y);
  return out;
}

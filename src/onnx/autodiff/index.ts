// Reverse-mode automatic differentiation over ONNX graphs (DESIGN decision 2: training graphs are ours).
// buildGradientModel appends, to a copy of the forward graph, the nodes computing d(loss)/d(w) for each requested
// value w and exposes them as outputs `<w>_grad` (same shape as w). Only nodes on a path from some w to the loss
// get gradient work; contributions to a value used by several nodes are summed with Add. Rules live one file per
// op family (elementwise, linear, conv, shape-ops, reduce, normalization, resize); GRADIENT_RULES lists them all.
// Limits, each refused with an error naming the node: ops without a rule; Slice with negative steps; Resize other
// than nearest integer upsampling; Conv auto_pad SAME_*; gradients through LayerNorm's Mean/InvStdDev outputs;
// subgraphs. Clip's min/max, Pad's constant value and Resize's scales are treated as constants (no gradient).
// Models need opset 13+; Reduce*/Squeeze/Split are emitted in the model's opset form.
import { OnnxError, type GraphProto, type NodeProto } from '../proto.ts';
import { readModel, writeModel } from '../model-io.ts';
import { valueInfo } from '../builder.ts';
import { describeNode, hasSubgraph } from './attributes.ts';
import { createEmitter, type Emitter } from './emitter.ts';
import { recomputeSegments } from './checkpoint.ts';
import { createShapeEnv, inferNode, isFloatType, type ShapeEnv } from './shapes.ts';
import type { GradRule } from './rule.ts';
import { elementwiseRules } from './elementwise.ts';
import { linearRules } from './linear.ts';
import { convRules } from './conv.ts';
import { shapeRules } from './shape-ops.ts';
import { reduceRules } from './reduce.ts';
import { normalizationRules } from './normalization.ts';
import { resizeRules } from './resize.ts';

export interface GradientOptions {
  /** Name of the scalar (or one-element) value to differentiate. */
  loss: string;
  /** Graph inputs or initializers to differentiate with respect to. */
  wrt: string[];
  /**
   * Activation checkpointing (checkpoint.ts): the segment of a node, by its name (forward nodes, and the backward
   * nodes emitted for them, whose names start with the forward node's), or null outside every segment. Each segment's
   * activations are recomputed before its backward pass instead of being kept from the forward pass.
   */
  recompute?: (nodeName: string) => string | null;
}

export const GRADIENT_RULES: Readonly<Record<string, GradRule>> = {
  ...elementwiseRules, ...linearRules, ...convRules, ...shapeRules, ...reduceRules, ...normalizationRules, ...resizeRules,
};

/** Ops whose outputs carry no gradient (integer/boolean results, or piecewise-constant functions). */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual',
  'Not', 'And', 'Or', 'Xor', 'ArgMax', 'ArgMin', 'NonZero', 'Floor', 'Ceil', 'Round', 'Sign', 'IsNaN', 'IsInf',
  'EyeLike', 'RandomNormal', 'RandomNormalLike', 'RandomUniform', 'RandomUniformLike', 'OneHot',
]);

export function buildGradientModel(bytes: Uint8Array, options: GradientOptions): Uint8Array {
  const model = readModel(bytes);
  const graph = model.graph!;
  const opset = defaultOpset(model.opsetImport ?? []);
  const nodes = topologicalOrder(graph);
  const env = createShapeEnv(graph);
  for (const n of nodes) inferNode(n, env);
  checkOptions(graph, nodes, options);

  const lossDims = env.types.get(options.loss)?.dims;
  if (lossDims?.some((d) => typeof d === 'number' && d > 1)) {
    throw new OnnxError(`autodiff: the loss "${options.loss}" has shape [${lossDims}]; it must be a scalar or hold one element`);
  }
  const reach = forwardReach(nodes, options.wrt, env);
  const active = nodes.filter((n) => (n.input ?? []).some((i) => reach.has(i))).filter(leadsTo(nodes, options.loss));
  for (const n of active) if (!NON_DIFFERENTIABLE.has(n.opType ?? '')) ruleFor(n); // fail before emitting anything
  graph.node = [...nodes];
  const e = createEmitter(graph, env, opset);
  const grads = new Map<string, string[]>();
  e.setScope(`${options.loss}_grad`, 'loss seed');
  grads.set(options.loss, [e.onesLike(options.loss)]);

  for (const node of [...active].reverse()) backward(node, e, grads, reach);
  if (options.recompute) recomputeSegments(graph, nodes.length, options.recompute, e, env);

  for (const w of options.wrt) {
    e.setScope(`${w}_grad`, `gradient of ${w}`);
    const total = accumulate(e, grads.get(w)) ?? e.zerosLike(w);
    const out = `${w}_grad`;
    e.ops('Identity', [total], {}, [out]);
    const t = env.types.get(w);
    const dims = t?.dims?.every((d) => d !== null) ? (t.dims as (number | string)[]) : undefined;
    (graph.output ??= []).push(valueInfo(out, t?.elemType ?? 1, dims));
  }
  return writeModel(model);
}

function backward(node: NodeProto, e: Emitter, grads: Map<string, string[]>, reach: Set<string>) {
  const y = node.output ?? [];
  e.setScope(`${node.name || y[0]}_grad`, describeNode(node));
  const dy = y.map((o) => accumulate(e, grads.get(o)));
  if (dy.every((g) => !g)) return;
  const x = node.input ?? [];
  const needs = x.map((i) => i !== '' && reach.has(i));
  if (!needs.some(Boolean) || NON_DIFFERENTIABLE.has(node.opType ?? '')) return;
  const dx = ruleFor(node)({ node, x, y, dy, needs, e });
  x.forEach((name, i) => {
    const g = dx[i];
    if (!needs[i] || !g) return;
    const list = grads.get(name) ?? [];
    list.push(g);
    grads.set(name, list);
  });
}

function ruleFor(node: NodeProto): GradRule {
  const rule = (!node.domain || node.domain === 'ai.onnx') && GRADIENT_RULES[node.opType ?? ''];
  if (!rule || hasSubgraph(node)) {
    throw new OnnxError(`autodiff: no gradient rule for op ${node.opType}${node.domain ? ` (domain ${node.domain})` : ''} at ${describeNode(node)}, which lies between the wrt values and the loss`);
  }
  return rule;
}

/** Sums gradient contributions (Add chain), or null when there are none. */
function accumulate(e: Emitter, parts: string[] | undefined): string | null {
  if (!parts?.length) return null;
  if (parts.length > 1) parts.splice(0, parts.length, parts.reduce((p, q) => e.op('Add', [p, q])));
  return parts[0];
}

function defaultOpset(imports: { domain?: string | null; version?: unknown }[]): number {
  const entry = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  const version = Number(entry?.version ?? 0);
  if (version < 13) throw new OnnxError(`autodiff: the model imports ONNX opset ${version}; opset 13 or later is required`);
  return version;
}

function checkOptions(graph: GraphProto, nodes: NodeProto[], { loss, wrt }: GradientOptions) {
  const produced = new Set(nodes.flatMap((n) => n.output ?? []));
  const inputs = new Set([...(graph.input ?? []).map((v) => v.name), ...(graph.initializer ?? []).map((t) => t.name)]);
  if (!produced.has(loss) && !inputs.has(loss)) throw new OnnxError(`autodiff: the loss "${loss}" is not a value of the graph`);
  if (!wrt.length) throw new OnnxError('autodiff: wrt is empty');
  const taken = new Set([...produced, ...inputs, ...(graph.output ?? []).map((v) => v.name)]);
  for (const w of wrt) {
    if (!inputs.has(w)) throw new OnnxError(`autodiff: "${w}" is not a graph input or initializer`);
    if (taken.has(`${w}_grad`)) throw new OnnxError(`autodiff: the graph already has a value named "${w}_grad"`);
  }
  if (new Set(wrt).size !== wrt.length) throw new OnnxError('autodiff: wrt names a value twice');
}

/** Float values computed from some wrt value through differentiable ops. */
function forwardReach(nodes: NodeProto[], wrt: string[], env: ShapeEnv): Set<string> {
  const reach = new Set(wrt);
  for (const n of nodes) {
    if (NON_DIFFERENTIABLE.has(n.opType ?? '') || !(n.input ?? []).some((i) => reach.has(i))) continue;
    for (const o of n.output ?? []) if (o && isFloatType(env.types.get(o)?.elemType ?? null)) reach.add(o);
  }
  return reach;
}

/** A predicate: does the node lead to `loss`? */
function leadsTo(nodes: NodeProto[], loss: string): (n: NodeProto) => boolean {
  const needed = new Set([loss]);
  const result = new Set<NodeProto>();
  for (const n of [...nodes].reverse()) {
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    result.add(n);
    for (const i of n.input ?? []) if (i) needed.add(i);
  }
  return (n) => result.has(n);
}

/** Kahn's order (ONNX requires sorted graphs, but we do not trust files). */
export function topologicalOrder(graph: GraphProto): NodeProto[] {
  const nodes = graph.node ?? [];
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const pending = nodes.map((n) => new Set((n.input ?? []).filter((i) => producer.has(i)).map((i) => producer.get(i)!)));
  const users = nodes.map(() => [] as number[]);
  pending.forEach((deps, i) => deps.forEach((d) => users[d].push(i)));
  const ready = nodes.map((_, i) => i).filter((i) => pending[i].size === 0);
  const order: NodeProto[] = [];
  for (let k = 0; k < ready.length; k++) {
    const i = ready[k];
    order.push(nodes[i]);
    for (const u of users[i]) {
      pending[u].delete(i);
      if (pending[u].size === 0) ready.push(u);
    }
  }
  if (order.length !== nodes.length) throw new OnnxError('autodiff: the graph has a cycle');
  return order;
}

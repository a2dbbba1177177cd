// Activation checkpointing (recomputation) for gradient graphs built by buildGradientModel: Chen et al. 2016,
// "Training Deep Nets with Sublinear Memory Cost", with torch.utils.checkpoint's semantics. The forward nodes are cut
// into segments (`segmentOf(nodeName)`, e.g. the UNet's down_blocks.N / mid_block / up_blocks.N); for each segment the
// values its own backward nodes read are no longer kept from the forward pass: a copy of the segment's forward nodes
// recomputes them from the segment's inputs just before that backward runs. Only the segment inputs (and the values
// read across segments) stay alive between the forward and the backward pass.
//
// onnxruntime runs its own order (src/onnx/execution-memory.ts: a reverse-DFS post-order from the leaves, producers
// visited highest index first), and its common-subexpression elimination would merge a copy whose inputs equal the
// original's. So every float input of a copy is gated on the backward frontier: input' = input + 0·g, where g is one
// element of the gradient arriving at the segment's first backward node. The copies then (a) cannot run before that
// gradient exists and (b) differ from the originals as expressions. Adding +0 leaves every finite value unchanged, so
// the gradients are the plain graph's: bit-identical under onnxruntime's basic optimisations; with all of them, its
// fusions may differ once forward values lose their backward readers (float32 round-off, src/train/checkpoint.test.ts).
// Nodes of a segment that do not depend on a gated input (shape arithmetic, weight-only transforms) are not copied:
// their original outputs are small and kept.
import type { GraphProto, NodeProto } from '../proto.ts';
import type { Emitter } from './emitter.ts';
import { inferNode, isFloatType, type ShapeEnv } from './shapes.ts';

export interface RecomputeReport {
  /** Segments given recomputation, in forward order. */
  segments: string[];
  /** Forward nodes copied in all. */
  recomputedNodes: number;
}

/**
 * Rewrites `graph.node` (forward nodes first, `forwardCount` of them, then the backward nodes autodiff appended) so
 * that each segment's backward nodes read recomputed values. `e` is the emitter that built the backward pass (its
 * names stay unique) and its shape environment (kept current for the copies).
 */
export function recomputeSegments(graph: GraphProto, forwardCount: number, segmentOf: (nodeName: string) => string | null, e: Emitter, env: ShapeEnv): RecomputeReport {
  const all = graph.node ?? [];
  const forward = all.slice(0, forwardCount);
  const backward = all.slice(forwardCount);
  const segmentOfNode = new Map<NodeProto, string | null>(forward.map((n) => [n, segmentOf(n.name ?? '')]));
  const producer = new Map<string, NodeProto>();
  forward.forEach((n) => (n.output ?? []).forEach((o) => o && producer.set(o, n)));
  const backwardIndex = new Map<NodeProto, number>(backward.map((n, i) => [n, i]));
  const backwardProducer = new Map<string, number>();
  backward.forEach((n, i) => (n.output ?? []).forEach((o) => o && backwardProducer.set(o, i)));
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name!));

  // Backward nodes by segment, with the forward values of their own segment they read.
  const bySegment = new Map<string, { nodes: NodeProto[]; needed: Set<string> }>();
  for (const b of backward) {
    const s = segmentOf(b.name ?? '');
    if (s === null) continue;
    const entry = bySegment.get(s) ?? { nodes: [], needed: new Set<string>() };
    entry.nodes.push(b);
    for (const v of b.input ?? []) if (v && producer.has(v) && segmentOfNode.get(producer.get(v)!) === s) entry.needed.add(v);
    bySegment.set(s, entry);
  }

  const insertions = new Map<number, NodeProto[]>(); // backward index → copies to run just before it
  const report: RecomputeReport = { segments: [], recomputedNodes: 0 };
  const forwardOrder = [...new Set(forward.map((n) => segmentOfNode.get(n)).filter((s): s is string => s !== null))];
  for (const s of forwardOrder) {
    const entry = bySegment.get(s);
    if (!entry?.needed.size) continue;
    const first = entry.nodes.find((b) => (b.input ?? []).some((v) => entry.needed.has(v)))!;
    const at = backwardIndex.get(first)!;
    const frontier = frontierOf(entry.nodes, at, backwardProducer, backwardIndex);
    if (!frontier) continue;
    const copies = copySegment(s, entry, { forward, producer, segmentOfNode, initializers, frontier, e, env, graph });
    if (!copies.nodes.length) continue;
    for (const b of entry.nodes) b.input = (b.input ?? []).map((v) => copies.renamed.get(v) ?? v);
    insertions.set(at, [...(insertions.get(at) ?? []), ...copies.nodes]);
    report.segments.push(s);
    report.recomputedNodes += copies.copied;
  }
  graph.node = [...forward, ...backward.flatMap((b, i) => [...(insertions.get(i) ?? []), b])];
  return report;
}

/**
 * The gradient value the recomputation waits for: of the backward values the segment's backward nodes read that were
 * made before its first recomputation-reading node (index `at`), the one made last.
 */
function frontierOf(nodes: NodeProto[], at: number, producedAt: Map<string, number>, indexOf: Map<NodeProto, number>): string | null {
  let best: string | null = null;
  let bestAt = -1;
  for (const b of nodes) {
    if (indexOf.get(b)! < at) continue;
    for (const v of b.input ?? []) {
      const p = producedAt.get(v);
      if (p !== undefined && p < at && p > bestAt) [best, bestAt] = [v, p];
    }
  }
  return best;
}

interface CopyContext {
  forward: NodeProto[];
  producer: Map<string, NodeProto>;
  segmentOfNode: Map<NodeProto, string | null>;
  initializers: Set<string>;
  frontier: string;
  e: Emitter;
  env: ShapeEnv;
  graph: GraphProto;
}

/** The segment's gated inputs and copies of the nodes that recompute `needed` from them, in forward order. */
function copySegment(s: string, entry: { needed: Set<string> }, c: CopyContext) {
  const inSegment = (v: string) => c.producer.has(v) && c.segmentOfNode.get(c.producer.get(v)!) === s;
  // The forward nodes of the segment that `needed` depends on, found backwards through the segment.
  const wanted = new Set<NodeProto>();
  const stack = [...entry.needed];
  while (stack.length) {
    const v = stack.pop()!;
    const n = c.producer.get(v);
    if (!n || !inSegment(v) || wanted.has(n)) continue;
    wanted.add(n);
    for (const x of n.input ?? []) if (x) stack.push(x);
  }
  // A node is copied when it depends on a float value from outside the segment (an activation or a graph input).
  const gated = new Set<string>();
  const dynamic = new Set<string>();
  const ordered = c.forward.filter((n) => wanted.has(n));
  for (const n of ordered) {
    let depends = false;
    for (const x of n.input ?? []) {
      if (!x || c.initializers.has(x)) continue;
      if (inSegment(x)) depends ||= dynamic.has(x);
      else if (isFloatType(c.e.elemType(x))) {
        gated.add(x);
        depends = true;
      }
    }
    if (depends) (n.output ?? []).forEach((o) => o && dynamic.add(o));
  }
  const renamed = new Map<string, string>();
  let copied = 0;
  const before = c.graph.node!.length;
  if (dynamic.size) {
    c.e.setScope(`${s}/recompute`, `recomputation of ${s}`);
    const flat = c.e.op('Reshape', [c.frontier, c.e.int64s([-1])]);
    const zero = c.e.op('Mul', [c.e.op('Slice', [flat, c.e.int64s([0]), c.e.int64s([1])]), c.e.scalar(0, c.frontier)]);
    for (const x of [...gated].sort()) renamed.set(x, c.e.op('Add', [x, c.e.castLike(zero, x)]));
    for (const n of ordered) {
      if (!(n.output ?? []).some((o) => dynamic.has(o))) continue;
      const outputs = (n.output ?? []).map((o) => (o ? `${o}_recomputed` : ''));
      const copy: NodeProto = { ...n, name: `${n.name}_recomputed`, input: (n.input ?? []).map((x) => renamed.get(x) ?? x), output: outputs };
      c.graph.node!.push(copy);
      inferNode(copy, c.env);
      (n.output ?? []).forEach((o, i) => o && renamed.set(o, outputs[i]));
      copied++;
    }
  }
  const nodes = c.graph.node!.splice(before);
  return { nodes, renamed: new Map([...renamed].filter(([v]) => entry.needed.has(v))), copied };
}

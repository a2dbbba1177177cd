// The peak memory of a graph's intermediate values when onnxruntime runs it node by node, found by simulation before
// anything is allocated (the training memory plan, src/train/memory-plan.ts, uses it on the DPO graph).
//
// Model of onnxruntime's sequential executor (onnxruntime/core/graph/graph_viewer.cc and graph.cc, ReverseDFSFrom):
//   order     Constant nodes become initializers when ORT loads the graph; the rest runs in the default order, a
//             post-order depth-first walk from the leaf nodes (nodes whose outputs no node reads), leaves taken from
//             the last one, each node's producers visited highest index first (checked against ORT's own profile in
//             execution-memory.test.ts);
//   lifetime  a value is allocated when its node runs and freed after the last node that reads it; graph outputs live
//             to the end; initializers and graph inputs are not counted (the caller counts weights once);
//   aliases   Reshape, Squeeze, Unsqueeze, Flatten and Identity return a view of their input (ORT's Alias kernels), so
//             they cost nothing and keep their source alive as long as they are read.
// ORT also runs some element-wise kernels in place and fuses nodes under graph optimisation, which can only lower the
// real peak: the simulated one is an estimate from above of the values' bytes. Kernel scratch (Conv's im2col, GEMM
// packing) is not a graph value; the caller adds an allowance for it.
import type { NodeProto } from './proto.ts';

const ALIAS_OPS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity']);

/** onnxruntime's default (ExecutionOrder::DEFAULT) order of `graphNodes` without its Constant nodes; a DAG. */
export function ortExecutionOrder(graphNodes: readonly NodeProto[]): NodeProto[] {
  const nodes = graphNodes.filter((n) => n.opType !== 'Constant');
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const producers = nodes.map((n) => [...new Set((n.input ?? []).filter((x) => producer.has(x)).map((x) => producer.get(x)!))].sort((a, b) => a - b));
  const consumed = new Array<boolean>(nodes.length).fill(false);
  producers.forEach((list) => list.forEach((j) => (consumed[j] = true)));

  const stack: { node: number; leave: boolean }[] = [];
  nodes.forEach((_, i) => consumed[i] || stack.push({ node: i, leave: false }));
  const visited = new Array<boolean>(nodes.length).fill(false);
  const order: NodeProto[] = [];
  while (stack.length) {
    const { node, leave } = stack.pop()!;
    if (leave) {
      order.push(nodes[node]);
      continue;
    }
    if (visited[node]) continue;
    visited[node] = true;
    stack.push({ node, leave: true });
    for (const j of producers[node]) if (!visited[j]) stack.push({ node: j, leave: false });
  }
  return order;
}

export interface PeakMemory {
  /** Largest sum of the bytes of the values alive at once. */
  peakBytes: number;
  /** The largest single value (it must fit one buffer). */
  largestBytes: number;
}

/**
 * Simulates the values' lifetimes over `order`. `bytesOf(name)` gives a value's size, or null for values that are not
 * counted (initializers, graph inputs, values of unknown shape: the caller decides and reports them).
 */
export function simulatePeakMemory(order: readonly NodeProto[], outputs: readonly string[], bytesOf: (value: string) => number | null): PeakMemory {
  const source = new Map<string, string>(); // alias → the value whose buffer it views
  const sizes = new Map<string, number>();
  for (const node of order) {
    for (const out of node.output ?? []) {
      if (!out) continue;
      const viewed = node.input?.[0];
      if (ALIAS_OPS.has(node.opType ?? '') && viewed) source.set(out, source.get(viewed) ?? viewed);
      else sizes.set(out, bytesOf(out) ?? 0);
    }
  }
  const buffer = (value: string) => source.get(value) ?? value;
  const lastRead = new Map<string, number>();
  order.forEach((node, step) => (node.input ?? []).forEach((x) => x && lastRead.set(buffer(x), step)));
  for (const out of outputs) lastRead.set(buffer(out), order.length);

  let live = 0;
  let peakBytes = 0;
  let largestBytes = 0;
  order.forEach((node, step) => {
    const made = (node.output ?? []).filter((o) => sizes.has(o));
    for (const out of made) {
      live += sizes.get(out)!;
      largestBytes = Math.max(largestBytes, sizes.get(out)!);
    }
    peakBytes = Math.max(peakBytes, live);
    for (const x of new Set((node.input ?? []).map(buffer))) if (sizes.has(x) && lastRead.get(x) === step) live -= sizes.get(x)!;
    for (const out of made) if (!lastRead.has(out)) live -= sizes.get(out)!; // never read: freed at once
  });
  return { peakBytes, largestBytes };
}

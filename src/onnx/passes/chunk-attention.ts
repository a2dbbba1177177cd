// Query-chunked attention (issue 26): softmax(Q·Kᵀ·s)·V computed for a slice of the queries at a time, so that no
// [batch·heads, queries, keys] score tensor is ever alive whole. The exporters write attention as plain ops
// (diffusers' Attention.get_attention_scores: MatMul → Mul(scale) → Add(baddbmm's β=0 term) → Softmax → Cast →
// MatMul), which materialises the scores: SD1.5 at 512² has [16, 4096, 4096] float32 = 1 GiB in each of its five
// largest self-attentions, several times over (the product, the scaled product, the zeros added, the softmax).
// Softmax runs along the keys, so every query row is independent: the rows split into chunks, each chunk's output is
// computed as before, and the outputs are concatenated along the query axis. This is xformers' and sub-quadratic
// attention's query chunking (diffusers' attention slicing splits batch·heads instead; at SD1.5 512² one head's
// scores are still 64 MiB × 2 samples, and a query split reaches any size). Plain ops only (Split, MatMul, Softmax,
// Concat), so the same graph runs on ORT's WASM and WebGPU kernels and our autodiff differentiates it (Split ↔ Concat).
// Many chunks are split and joined as a tree of at most MAX_PARTS parts per node (WebGPU's storage-buffer limit).
//
// Recognised, per Softmax along the last axis: MatMul(Q, Kᵀ) → any chain of Mul/Div by a scalar constant, Cast, and
// Add/Sub of a tensor that is provably zero (ConstantOfShape of a finite value times a constant 0, as torch exports
// baddbmm(empty, q, kᵀ, beta=0)) → Softmax → [Cast] → MatMul(·, V). The zero term is dropped with the nodes that made
// it (it is itself a full [batch·heads, q, k] tensor). Any other shape of attention is left as it is.
// The split sizes are static: the rewritten graph is made for the query count it was planned at (planAttentionChunks),
// and ORT refuses other sizes at Split, naming the node. The engine makes a UNet session per plan.
import { createShapeEnv, inferNode, type ShapeEnv } from '../autodiff/shapes.ts';
import { makeAttribute } from '../builder.ts';
import { bytesPer, makeTensor, readTensor } from '../tensor.ts';
import { int, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../proto.ts';

/** A node of the chain between the scores and the output, and which of its inputs carries the scores. */
export interface ChainLink { node: NodeProto; input: number }

/** One attention the pass can chunk, found by its Softmax node. */
export interface AttentionSite {
  /** The Softmax node's name (the key of a chunk plan). */
  softmax: string;
  scoresMatMul: NodeProto;
  outputMatMul: NodeProto;
  /** The chain from the scores to the output's MatMul, in order (Mul/Div by scalars, Cast, the Softmax); dropped zero terms left out. */
  chain: ChainLink[];
  /** Every node the chunked form replaces (the MatMuls, the chain, the Add/Sub of a zero term). */
  replaced: NodeProto[];
}

/** The size of one site's scores at a planned input size. */
export interface AttentionShape { site: AttentionSite; batchHeads: number; queries: number; keys: number; elementBytes: number; scoreBytes: number }

export interface AttentionPlan {
  /** Chunks per site (Softmax name); only sites that are split (> 1 chunk). */
  chunks: Map<string, number>;
  /** Every attention found, with its size. */
  shapes: AttentionShape[];
  /** Softmax nodes whose pattern was not recognised (left whole). */
  unrecognised: string[];
}

/**
 * Bytes one chunk's scores may take. A chunk's product, its scaled copy and its softmax can be alive together, so the
 * chunked attention's peak is about three of these; 64 MiB keeps SD1.5 512² (1 GiB of scores per self-attention at
 * batch 2) at 16 chunks and every buffer far under WebGPU's default 128 MiB binding limit.
 */
export const SCORE_CHUNK_BYTES = 64 * 2 ** 20;

/** Every attention of the graph in the recognised form, and the Softmax nodes that are not. */
export function findAttention(graph: GraphProto): { sites: AttentionSite[]; unrecognised: string[] } {
  const nodes = graph.node ?? [];
  const producer = new Map<string, NodeProto>();
  const readers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output ?? []) if (o) producer.set(o, n);
    for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  const outputs = new Set((graph.output ?? []).map((v) => v.name));
  const constants = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  for (const n of nodes) {
    const t = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
    if (t && n.output?.[0]) constants.set(n.output[0], t);
  }
  /** Read by `reader` only, and not a graph output: the chain can be cut there. */
  const readOnlyBy = (value: string, reader: NodeProto) => !outputs.has(value) && (readers.get(value) ?? []).every((r) => r === reader);
  const scalar = (value: string | undefined): number | undefined => {
    const t = value === undefined ? undefined : constants.get(value);
    return t && (t.dims ?? []).map(int).reduce((a, b) => a * b, 1) === 1 ? firstValue(t) : undefined;
  };
  /** A ConstantOfShape's fill value (0 when it has none). */
  const fillOf = (n: NodeProto | undefined) => {
    if (n?.opType !== 'ConstantOfShape') return undefined;
    const t = n.attribute?.find((a) => a.name === 'value')?.t;
    return t ? firstValue(t) : 0;
  };
  /** The nodes that make `value` all zeros by construction (ConstantOfShape(0), or ConstantOfShape(finite c) · 0), or null. */
  const zeroTerm = (value: string | undefined): NodeProto[] | null => {
    const p = value === undefined ? undefined : producer.get(value);
    if (!p) return null;
    if (fillOf(p) === 0) return [p];
    if (p.opType !== 'Mul') return null;
    const [a, b] = p.input ?? [];
    for (const [fill, factor] of [[a, b], [b, a]]) {
      const c = fillOf(producer.get(fill));
      if (c !== undefined && Number.isFinite(c) && scalar(factor) === 0) return [producer.get(fill)!, p];
    }
    return null;
  };

  function matchSite(softmax: NodeProto): AttentionSite | null {
    const axis = softmax.attribute?.find((a) => a.name === 'axis');
    if (!axis || int(axis.i ?? 0) !== -1) return null;
    const before: ChainLink[] = [];
    const dropped: NodeProto[] = [];
    let value = softmax.input?.[0] ?? '';
    let reader = softmax;
    for (let depth = 0; depth < 8; depth++) {
      const p = producer.get(value);
      if (!p || !readOnlyBy(value, reader)) return null;
      const [a, b] = p.input ?? [];
      if (p.opType === 'MatMul') {
        const after = afterSoftmax(softmax);
        if (!after) return null;
        const chain = [...before.reverse(), { node: softmax, input: 0 }, ...after.chain];
        return { softmax: softmax.name ?? '', scoresMatMul: p, outputMatMul: after.matmul, chain, replaced: [p, ...dropped, ...chain.map((l) => l.node), after.matmul] };
      }
      let input: number;
      if (p.opType === 'Cast') input = 0;
      else if ((p.opType === 'Mul' || p.opType === 'Div') && scalar(b) !== undefined) input = 0;
      else if (p.opType === 'Mul' && scalar(a) !== undefined) input = 1;
      else if ((p.opType === 'Add' || p.opType === 'Sub') && zeroTerm(b)) input = -1; // x ± 0: dropped
      else if (p.opType === 'Add' && zeroTerm(a)) input = -2; // 0 + x: dropped
      else return null;
      if (input < 0) dropped.push(p);
      else before.push({ node: p, input });
      value = input === -2 ? b : input === 1 ? b : a;
      reader = p;
    }
    return null;
  }

  function afterSoftmax(softmax: NodeProto): { chain: ChainLink[]; matmul: NodeProto } | null {
    let value = softmax.output?.[0] ?? '';
    const chain: ChainLink[] = [];
    for (let depth = 0; depth < 3; depth++) {
      const next = readers.get(value) ?? [];
      if (next.length !== 1 || outputs.has(value)) return null;
      const [n] = next;
      if (n.opType === 'MatMul' && n.input?.[0] === value) return { chain, matmul: n };
      if (n.opType !== 'Cast') return null;
      chain.push({ node: n, input: 0 });
      value = n.output?.[0] ?? '';
    }
    return null;
  }

  const sites: AttentionSite[] = [];
  const unrecognised: string[] = [];
  for (const softmax of nodes) {
    if (softmax.opType !== 'Softmax' || (softmax.domain && softmax.domain !== 'ai.onnx')) continue;
    const site = matchSite(softmax);
    if (site) sites.push(site);
    else unrecognised.push(softmax.name ?? '');
  }
  return { sites, unrecognised };
}

function firstValue(t: TensorProto): number | undefined {
  try {
    // A fresh Uint8Array: in Node, decoded raw_data may be a Buffer over a shared pool (shapes.ts addConstant).
    const { data } = readTensor(t.rawData ? { ...t, rawData: new Uint8Array(t.rawData) } : t);
    return Number((data as ArrayLike<number | bigint>)[0]);
  } catch {
    return undefined;
  }
}

/** The graph's inputs with these dims (the planned size); other inputs keep theirs. */
export function withInputDims(graph: GraphProto, dims: Readonly<Record<string, readonly number[]>>): GraphProto {
  const input = (graph.input ?? []).map((v) => {
    const given = dims[v.name ?? ''];
    if (!given) return v;
    return { ...v, type: { ...v.type, tensorType: { ...v.type!.tensorType, shape: { dim: given.map((d) => ({ dimValue: d })) } } } };
  });
  return { ...graph, input };
}

/** Shapes of every value of the graph at these input dims. */
export function shapesAt(graph: GraphProto, dims: Readonly<Record<string, readonly number[]>>): ShapeEnv {
  const fixed = withInputDims(graph, dims);
  const env = createShapeEnv(fixed);
  for (const node of fixed.node ?? []) inferNode(node, env);
  return env;
}

/**
 * How many query chunks each attention needs so that one chunk's scores stay within `budgetBytes`, at these input
 * dims (e.g. sample [4, 4, 64, 64] for two images' CFG batch at SD1.5 512²). Sites whose size is not known statically
 * are left whole.
 */
export function planAttentionChunks(model: ModelProto, dims: Readonly<Record<string, readonly number[]>>, budgetBytes = SCORE_CHUNK_BYTES): AttentionPlan {
  const graph = model.graph!;
  const { sites, unrecognised } = findAttention(graph);
  const env = shapesAt(graph, dims);
  const chunks = new Map<string, number>();
  const shapes: AttentionShape[] = [];
  for (const site of sites) {
    const scores = env.types.get(site.scoresMatMul.output![0]);
    const d = scores?.dims;
    if (!d || d.length < 2 || !d.every((x) => typeof x === 'number')) continue;
    const [queries, keys] = (d as number[]).slice(-2);
    const batchHeads = (d as number[]).slice(0, -2).reduce((a, b) => a * b, 1);
    const elementBytes = bytesPer(scores!.elemType ?? 1);
    const scoreBytes = batchHeads * queries * keys * elementBytes;
    shapes.push({ site, batchHeads, queries, keys, elementBytes, scoreBytes });
    const n = Math.min(queries, Math.ceil(scoreBytes / budgetBytes));
    if (n > 1) chunks.set(site.softmax, n);
  }
  return { chunks, shapes, unrecognised };
}

/** The name part that marks a chunk's nodes: `<Softmax name>_chunked/<chunk>/…` (unet-segments.ts cuts there). */
export const CHUNK_NODE = /_chunked\/\d+\//;

/** Whether the graph has attention the pass has chunked. */
export function hasChunkedAttention(model: ModelProto): boolean {
  return (model.graph?.node ?? []).some((n) => CHUNK_NODE.test(n.name ?? ''));
}

/** A plan's identity: two plans with the same key give the same graph. */
export function chunkPlanKey(plan: Pick<AttentionPlan, 'chunks'>): string {
  return [...plan.chunks].map(([name, n]) => `${name}:${n}`).join('|');
}

/**
 * The graph with each planned attention computed in its planned number of query slices (sizes balanced: the first
 * q mod n chunks one row longer), for the query count it was planned at. `plan` must come from planAttentionChunks of
 * this same model (its sites are this model's node objects). Nodes left without readers (the zero terms'
 * ConstantOfShape and the shape arithmetic feeding it) are removed.
 */
export function chunkAttention(model: ModelProto, plan: Pick<AttentionPlan, 'chunks' | 'shapes'>): ModelProto {
  if (plan.chunks.size === 0) return model;
  const graph = model.graph!;
  const opset = int((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version ?? 13);
  const chunked = plan.shapes.filter((s) => plan.chunks.has(s.site.softmax));
  const at = new Map(chunked.map((s) => [s.site.outputMatMul, s]));
  const replaced = new Set(chunked.flatMap((s) => s.site.replaced));
  const initializers: TensorProto[] = [...(graph.initializer ?? [])];
  const nodes: NodeProto[] = [];
  for (const node of graph.node ?? []) {
    const shape = at.get(node);
    // Emitted where the output's MatMul was: every input (Q, Kᵀ, V, the scalars) is made before it.
    if (shape) nodes.push(...chunkedNodes(shape, plan.chunks.get(shape.site.softmax)!, opset, (t) => initializers.push(t)));
    else if (!replaced.has(node)) nodes.push(node);
  }
  return { ...model, graph: { ...graph, node: withoutDeadNodes(nodes, graph), initializer: initializers } };
}

function chunkedNodes({ site, queries }: AttentionShape, chunks: number, opset: number, addInitializer: (t: TensorProto) => void): NodeProto[] {
  const prefix = `${site.softmax}_chunked`;
  const [q, keysT] = site.scoresMatMul.input!;
  const v = site.outputMatMul.input![1];
  const sizes = Array.from({ length: chunks }, (_, i) => Math.floor(queries / chunks) + (i < queries % chunks ? 1 : 0));
  const out: NodeProto[] = [];
  const axis = makeAttribute('axis', -2);
  let made = 0;
  /** Split of `value` into parts of these sizes along the query axis. */
  const split = (value: string, parts: number[]): string[] => {
    const name = `${prefix}/Split_${made++}`;
    const outputs = parts.map((_, i) => `${name}/${i}`);
    const node: NodeProto = { name, opType: 'Split', domain: '', input: [value], output: outputs, attribute: [axis] };
    if (opset >= 13) {
      addInitializer(makeTensor(`${name}/sizes`, [parts.length], BigInt64Array.from(parts.map(BigInt))));
      node.input!.push(`${name}/sizes`);
    } else node.attribute!.push(makeAttribute('split', parts));
    out.push(node);
    return outputs;
  };
  const concat = (values: string[], output: string) => {
    out.push({ name: `${prefix}/Concat_${made++}`, opType: 'Concat', domain: '', input: values, output: [output], attribute: [axis] });
  };
  const attend = (part: string, i: number): string => {
    const name = (local: string) => `${prefix}/${i}/${local}`;
    let value = name('scores');
    out.push({ ...site.scoresMatMul, name: value, input: [part, keysT], output: [value] });
    site.chain.forEach(({ node, input }, k) => {
      const next = name(`${node.opType}_${k}`);
      out.push({ ...node, name: next, input: (node.input ?? []).map((x, j) => (j === input ? value : x)), output: [next] });
      value = next;
    });
    out.push({ ...site.outputMatMul, name: name('out'), input: [value, v], output: [name('out')] });
    return name('out');
  };
  let chunk = 0;
  /** The attention of `value`'s queries in chunks of `parts` sizes, its output named `output`: a tree of Splits and Concats. */
  const tree = (value: string, parts: number[], output: string) => {
    const groups = groupsOf(parts, MAX_PARTS);
    const pieces = split(value, groups.map((g) => g.reduce((a, b) => a + b, 0)));
    const results = groups.map((group, g) => {
      if (group.length === 1) return attend(pieces[g], chunk++);
      const result = `${prefix}/group_${made++}`;
      tree(pieces[g], group, result);
      return result;
    });
    concat(results, output);
  };
  tree(q, sizes, site.outputMatMul.output![0]);
  return out;
}

/**
 * Parts per Split and Concat node: ORT's WebGPU kernels bind every part and the whole as storage buffers at once, and
 * WebGPU guarantees 8 per shader stage (maxStorageBuffersPerShaderStage's default; SwiftShader offers 12). More chunks
 * make a tree: a Split of groups, each split again.
 */
export const MAX_PARTS = 7;

/** `parts` in at most `fanout` consecutive groups of near-equal counts. */
function groupsOf(parts: number[], fanout: number): number[][] {
  if (parts.length <= fanout) return parts.map((p) => [p]);
  const per = Math.ceil(parts.length / fanout);
  const groups: number[][] = [];
  for (let i = 0; i < parts.length; i += per) groups.push(parts.slice(i, i + per));
  return groups;
}

/** `nodes` without those whose outputs nothing reads (repeatedly), keeping what makes the graph's outputs. */
function withoutDeadNodes(nodes: NodeProto[], graph: GraphProto): NodeProto[] {
  const needed = new Set((graph.output ?? []).map((v) => v.name ?? ''));
  const live: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!(n.output ?? []).some((o) => needed.has(o))) continue;
    live.push(n);
    for (const x of n.input ?? []) if (x) needed.add(x);
  }
  return live.reverse();
}

// Static element-type and shape inference for the autodiff pass. Dims are numbers when known, the graph's symbol
// (e.g. 'batch') when symbolic, and null when unknown; a null shape means unknown rank. The gradient rules use this
// only to decide ranks, permutations and which axes certainly broadcast: every size that matters at run time is taken
// from Shape ops in the emitted graph, so a symbolic batch dimension works for any batch size.
// Small numeric constants (initializers, Constant nodes, folded Shape/Gather/Concat chains) are tracked too, because
// Reshape/Slice/Squeeze/Resize take their parameters as inputs since opset 13.
import { DataType, int, type GraphProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../proto.ts';
import { readTensor } from '../tensor.ts';
import { attrFloat, attrInt, attrInts, attrString, hasAttr } from './attributes.ts';

export type Dim = number | string | null;
export interface ValueType {
  elemType: number | null;
  dims: Dim[] | null;
}
export interface ShapeEnv {
  types: Map<string, ValueType>;
  /** Values of small numeric constants, flattened, with their dims. */
  consts: Map<string, { dims: number[]; values: number[] }>;
  /** Values of small integer tensors with symbolic entries (shapes computed in the graph). */
  symbols: Map<string, { dims: number[]; values: Dim[] }>;
}

const UNKNOWN: ValueType = { elemType: null, dims: null };
const MAX_CONST = 4096;

export function typeOfInfo(info: ValueInfoProto): ValueType {
  const t = info.type?.tensorType;
  if (!t) return UNKNOWN;
  const dims = t.shape ? (t.shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? int(d.dimValue) : null)) : null;
  return { elemType: t.elemType ?? null, dims };
}

export function addConstant(env: ShapeEnv, name: string, tensor: TensorProto) {
  const dims = (tensor.dims ?? []).map(int);
  env.types.set(name, { elemType: tensor.dataType ?? null, dims });
  if (dims.reduce((a, b) => a * b, 1) > MAX_CONST || tensor.dataLocation === 1) return;
  try {
    // A fresh Uint8Array: in Node, decoded raw_data is a Buffer whose .slice() shares the 8 KB pool, which
    // tensor.ts's fromRaw then reads whole (reported to the ONNX core's owner).
    const { data } = readTensor(tensor.rawData ? { ...tensor, rawData: new Uint8Array(tensor.rawData) } : tensor);
    env.consts.set(name, { dims, values: Array.from(data as ArrayLike<number | bigint>, Number) });
  } catch {
    // not a numeric type we read: only its type is known
  }
}

export function createShapeEnv(graph: GraphProto): ShapeEnv {
  const env: ShapeEnv = { types: new Map(), consts: new Map(), symbols: new Map() };
  for (const info of [...(graph.valueInfo ?? []), ...(graph.output ?? []), ...(graph.input ?? [])]) {
    if (info.name) env.types.set(info.name, typeOfInfo(info));
  }
  for (const t of graph.initializer ?? []) if (t.name) addConstant(env, t.name, t);
  return env;
}

export const isFloatType = (t: number | null) =>
  t === null || t === DataType.FLOAT || t === DataType.DOUBLE || t === DataType.FLOAT16 || t === DataType.BFLOAT16;

export function broadcastDims(shapes: (Dim[] | null)[]): Dim[] | null {
  if (shapes.some((s) => s === null)) return null;
  const ss = shapes as Dim[][];
  const rank = Math.max(0, ...ss.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let o: Dim = 1;
    for (const s of ss) {
      const d = s[s.length - rank + i];
      if (d === undefined || d === 1 || d === o) continue;
      if (o === 1) o = d;
      else if (typeof d === 'number') o = d;
      else if (typeof o !== 'number') o = null;
    }
    out.push(o);
  }
  return out;
}

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** Axes given either as an attribute (older opsets) or as a constant input (the opset 13/18 forms). */
export function axesOf(node: NodeProto, env: ShapeEnv, inputIndex: number): number[] | null | undefined {
  const attr = attrInts(node, 'axes');
  if (attr) return attr;
  const name = node.input?.[inputIndex];
  if (!name) return undefined;
  return env.consts.get(name)?.values ?? null;
}

type Infer = (node: NodeProto, ins: ValueType[], env: ShapeEnv) => ValueType[];

const same: Infer = (_n, ins) => [ins[0] ?? UNKNOWN];
const bool = (dims: Dim[] | null): ValueType => ({ elemType: DataType.BOOL, dims });
const elem = (ins: ValueType[]) => ins.find((t) => t.elemType !== null)?.elemType ?? null;
const bcast: Infer = (_n, ins) => [{ elemType: elem(ins), dims: broadcastDims(ins.map((t) => t.dims)) }];
const compare: Infer = (_n, ins) => [bool(broadcastDims(ins.map((t) => t.dims)))];

function constOf(env: ShapeEnv, name: string | undefined) {
  return name ? env.consts.get(name) : undefined;
}

function matmulDims(a: Dim[] | null, b: Dim[] | null): Dim[] | null {
  if (!a || !b) return null;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcastDims([a2.slice(0, -2), b2.slice(0, -2)])!;
  const out = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return out;
}

function reshapeDims(input: Dim[] | null, shape: Dim[], allowzero: boolean): Dim[] {
  const out: Dim[] = shape.map((s, i) => (s === 0 && !allowzero ? (input?.[i] ?? null) : s));
  const minus = out.indexOf(-1);
  if (minus >= 0) out[minus] = inferredDim(input, out.filter((_d, i) => i !== minus));
  return out;
}

/** The −1 of a Reshape: the input's element count over the other target dims, cancelling equal symbols first. */
function inferredDim(input: Dim[] | null, others: Dim[]): Dim {
  if (!input || input.includes(null) || others.includes(null)) return null;
  const rest = [...input];
  const divisor: Dim[] = [];
  for (const d of others) {
    const i = typeof d === 'string' ? rest.indexOf(d) : -1;
    if (i >= 0) rest.splice(i, 1);
    else divisor.push(d);
  }
  const numeric = (ds: Dim[]) => (ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((p, q) => p * q, 1) : null);
  const [n, m] = [numeric(rest), numeric(divisor)];
  if (n !== null && m) return n % m === 0 ? n / m : null;
  if (m === 1 && rest.length === 1) return rest[0];
  return null;
}

function convDims(node: NodeProto, x: Dim[] | null, w: Dim[] | null, transpose: boolean): Dim[] | null {
  const rank = x?.length ?? w?.length;
  if (!rank) return null;
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') return Array(rank).fill(null);
  const sp = rank - 2;
  const kernel = attrInts(node, 'kernel_shape') ?? w?.slice(2) ?? Array(sp).fill(null);
  const strides = attrInts(node, 'strides') ?? Array(sp).fill(1);
  const dil = attrInts(node, 'dilations') ?? Array(sp).fill(1);
  const pads = attrInts(node, 'pads') ?? Array(2 * sp).fill(0);
  const group = attrInt(node, 'group', 1);
  const channels = transpose ? (typeof w?.[1] === 'number' ? w[1] * group : null) : (w?.[0] ?? null);
  const out: Dim[] = [x?.[0] ?? null, channels];
  const outShape = attrInts(node, 'output_shape');
  const outPad = attrInts(node, 'output_padding') ?? Array(sp).fill(0);
  for (let i = 0; i < sp; i++) {
    const d = x?.[i + 2];
    const k = kernel[i];
    if (outShape) out.push(outShape[i]);
    else if (typeof d !== 'number' || typeof k !== 'number') out.push(null);
    else if (transpose) out.push(strides[i] * (d - 1) + outPad[i] + (k - 1) * dil[i] + 1 - pads[i] - pads[i + sp]);
    else out.push(Math.floor((d + pads[i] + pads[i + sp] - ((k - 1) * dil[i] + 1)) / strides[i]) + 1);
  }
  return out;
}

function reduceDims(node: NodeProto, x: Dim[] | null, env: ShapeEnv): Dim[] | null {
  if (!x) return null;
  const keep = attrInt(node, 'keepdims', 1) === 1;
  const axes = axesOf(node, env, 1);
  if (axes === null) return keep ? x.map(() => null) : null;
  const all = !axes || axes.length === 0;
  if (all && attrInt(node, 'noop_with_empty_axes', 0) === 1) return x;
  const set = new Set((all ? x.map((_, i) => i) : axes).map((a) => norm(a, x.length)));
  return x.flatMap((d, i) => (set.has(i) ? (keep ? [1] : []) : [d]));
}

function sliceDims(node: NodeProto, x: Dim[] | null, env: ShapeEnv): Dim[] | null {
  if (!x) return null;
  const [starts, ends, axesC, stepsC] = [1, 2, 3, 4].map((i) => constOf(env, node.input?.[i])?.values);
  const axesName = node.input?.[3];
  if (axesName && !axesC) return x.map(() => null);
  const axes = axesC ?? x.map((_, i) => i).slice(0, starts?.length ?? ends?.length ?? 0);
  const out = [...x];
  axes.forEach((a, j) => {
    const ax = norm(a, x.length);
    const d = x[ax];
    const step = stepsC?.[j] ?? 1;
    if (!starts || !ends || typeof d !== 'number' || (node.input?.[4] && !stepsC)) {
      out[ax] = null;
      return;
    }
    out[ax] = sliceLength(starts[j], ends[j], step, d);
  });
  return out;
}

export function sliceLength(start: number, end: number, step: number, dim: number): number {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  s = clamp(s, -1, dim - 1);
  e = clamp(e, -1, dim - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

const infer: Record<string, Infer> = {
  Cast: (n, ins) => [{ elemType: attrInt(n, 'to', 0), dims: ins[0]?.dims ?? null }],
  CastLike: (_n, ins) => [{ elemType: ins[1]?.elemType ?? null, dims: ins[0]?.dims ?? null }],
  Where: (_n, ins) => [{ elemType: ins[1]?.elemType ?? ins[2]?.elemType ?? null, dims: broadcastDims(ins.map((t) => t.dims)) }],
  MatMul: (_n, [a, b]) => [{ elemType: elem([a, b]), dims: matmulDims(a.dims, b.dims) }],
  Gemm: (n, [a, b]) => {
    const m = a.dims ? a.dims[attrInt(n, 'transA', 0) ? 1 : 0] : null;
    const k = b.dims ? b.dims[attrInt(n, 'transB', 0) ? 0 : 1] : null;
    return [{ elemType: elem([a, b]), dims: [m ?? null, k ?? null] }];
  },
  Conv: (n, [x, w]) => [{ elemType: elem([x]), dims: convDims(n, x.dims, w?.dims ?? null, false) }],
  ConvTranspose: (n, [x, w]) => [{ elemType: elem([x]), dims: convDims(n, x.dims, w?.dims ?? null, true) }],
  Reshape: (n, [x, s], env) => {
    const shape = symOf(env, n.input?.[1]);
    if (shape) return [{ elemType: x.elemType, dims: reshapeDims(x.dims, shape.values, attrInt(n, 'allowzero', 0) === 1) }];
    const r = s?.dims?.[0];
    return [{ elemType: x.elemType, dims: typeof r === 'number' ? Array(r).fill(null) : null }];
  },
  Flatten: (n, [x]) => {
    if (!x.dims) return [{ elemType: x.elemType, dims: [null, null] }];
    const axis = norm(attrInt(n, 'axis', 1), x.dims.length);
    const prod = (ds: Dim[]) => (ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a * b, 1) : null);
    return [{ elemType: x.elemType, dims: [prod(x.dims.slice(0, axis)), prod(x.dims.slice(axis))] }];
  },
  Transpose: (n, [x]) => {
    if (!x.dims) return [{ elemType: x.elemType, dims: null }];
    const perm = attrInts(n, 'perm') ?? x.dims.map((_, i) => x.dims!.length - 1 - i);
    return [{ elemType: x.elemType, dims: perm.map((p) => x.dims![p]) }];
  },
  Squeeze: (n, [x], env) => {
    const axes = axesOf(n, env, 1);
    if (!x.dims || axes === null) return [{ elemType: x.elemType, dims: null }];
    if (!axes && !x.dims.every((d) => typeof d === 'number')) return [{ elemType: x.elemType, dims: null }];
    const set = new Set((axes ?? x.dims.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => norm(a, x.dims!.length)));
    return [{ elemType: x.elemType, dims: x.dims.filter((_, i) => !set.has(i)) }];
  },
  Unsqueeze: (n, [x], env) => {
    const axes = axesOf(n, env, 1);
    if (!x.dims || !axes) return [{ elemType: x.elemType, dims: null }];
    const rank = x.dims.length + axes.length;
    const set = new Set(axes.map((a) => norm(a, rank)));
    const out: Dim[] = [];
    for (let i = 0, j = 0; i < rank; i++) out.push(set.has(i) ? 1 : x.dims[j++]);
    return [{ elemType: x.elemType, dims: out }];
  },
  Concat: (n, ins) => {
    if (ins.some((t) => !t.dims)) return [{ elemType: elem(ins), dims: null }];
    const rank = ins[0].dims!.length;
    const axis = norm(attrInt(n, 'axis', 0), rank);
    const dims = [...ins[0].dims!];
    const parts = ins.map((t) => t.dims![axis]);
    dims[axis] = parts.every((d) => typeof d === 'number') ? (parts as number[]).reduce((a, b) => a + b, 0) : null;
    return [{ elemType: elem(ins), dims }];
  },
  Split: (n, [x], env) => {
    const count = n.output?.length ?? 1;
    if (!x.dims) return Array(count).fill({ elemType: x.elemType, dims: null });
    const axis = norm(attrInt(n, 'axis', 0), x.dims.length);
    const sizes = attrInts(n, 'split') ?? constOf(env, n.input?.[1])?.values;
    const d = x.dims[axis];
    return Array.from({ length: count }, (_, i) => {
      const dims = [...x.dims!];
      dims[axis] = sizes ? sizes[i] : typeof d === 'number' && d % count === 0 ? d / count : null;
      return { elemType: x.elemType, dims };
    });
  },
  Slice: (n, [x], env) => [{ elemType: x.elemType, dims: sliceDims(n, x.dims, env) }],
  Gather: (n, [x, idx]) => {
    if (!x.dims || !idx?.dims) return [{ elemType: x.elemType, dims: null }];
    const axis = norm(attrInt(n, 'axis', 0), x.dims.length);
    return [{ elemType: x.elemType, dims: [...x.dims.slice(0, axis), ...idx.dims, ...x.dims.slice(axis + 1)] }];
  },
  Expand: (n, [x, s], env) => {
    const shape = symOf(env, n.input?.[1]);
    if (shape) return [{ elemType: x.elemType, dims: broadcastDims([x.dims, shape.values]) }];
    const r = s?.dims?.[0];
    if (!x.dims || typeof r !== 'number') return [{ elemType: x.elemType, dims: null }];
    return [{ elemType: x.elemType, dims: Array(Math.max(r, x.dims.length)).fill(null) }];
  },
  Tile: (_n, [x]) => [{ elemType: x.elemType, dims: x.dims ? x.dims.map(() => null) : null }],
  Pad: (_n, [x]) => [{ elemType: x.elemType, dims: x.dims ? x.dims.map(() => null) : null }],
  Resize: (n, [x], env) => {
    const scales = constOf(env, n.input?.[2]);
    const sizes = constOf(env, n.input?.[3]);
    if (!x.dims) return [{ elemType: x.elemType, dims: null }];
    if (sizes?.values.length) return [{ elemType: x.elemType, dims: sizes.values }];
    if (scales?.values.length) {
      return [{ elemType: x.elemType, dims: x.dims.map((d, i) => (scales.values[i] === 1 ? d : typeof d === 'number' ? Math.floor(d * scales.values[i]) : null)) }];
    }
    return [{ elemType: x.elemType, dims: x.dims.map(() => null) }];
  },
  Shape: (n, [x]) => {
    const rank = x.dims?.length;
    const start = attrInt(n, 'start', 0);
    const end = hasAttr(n, 'end') ? attrInt(n, 'end', 0) : rank;
    if (rank === undefined) return [{ elemType: DataType.INT64, dims: [null] }];
    const s = Math.min(Math.max(norm(start, rank), 0), rank);
    const e = Math.min(Math.max(norm(end!, rank), 0), rank);
    return [{ elemType: DataType.INT64, dims: [Math.max(0, e - s)] }];
  },
  Size: () => [{ elemType: DataType.INT64, dims: [] }],
  ConstantOfShape: (n, [s], env) => {
    const value = (n.attribute ?? []).find((a) => a.name === 'value')?.t;
    const elemType = value?.dataType ?? DataType.FLOAT;
    const shape = symOf(env, n.input?.[0]);
    if (shape) return [{ elemType, dims: shape.values }];
    const r = s?.dims?.[0];
    return [{ elemType, dims: typeof r === 'number' ? Array(r).fill(null) : null }];
  },
  Range: (_n, [s]) => [{ elemType: s?.elemType ?? null, dims: [null] }],
  ScatterND: same,
  ScatterElements: same,
  GatherElements: (_n, [x, i]) => [{ elemType: x.elemType, dims: i?.dims ?? null }],
  LayerNormalization: (n, [x]) => {
    if (!x.dims) return [x, UNKNOWN, UNKNOWN];
    const axis = norm(attrInt(n, 'axis', -1), x.dims.length);
    const stat: ValueType = { elemType: x.elemType, dims: x.dims.map((d, i) => (i < axis ? d : 1)) };
    return [x, stat, stat];
  },
  Dropout: (_n, [x]) => [x, bool(x.dims)],
  Equal: compare, Less: compare, Greater: compare, LessOrEqual: compare, GreaterOrEqual: compare, And: compare, Or: compare, Xor: compare,
  Not: (_n, [x]) => [bool(x.dims)],
  IsNaN: (_n, [x]) => [bool(x.dims)],
  IsInf: (_n, [x]) => [bool(x.dims)],
  Add: bcast, Sub: bcast, Mul: bcast, Div: bcast, Pow: (_n, ins) => [{ elemType: ins[0].elemType, dims: broadcastDims(ins.map((t) => t.dims)) }],
  Max: bcast, Min: bcast, Sum: bcast, Mean: bcast, Mod: bcast, PRelu: bcast,
  ReduceSum: (n, [x], env) => [{ elemType: x.elemType, dims: reduceDims(n, x.dims, env) }],
};
for (const op of ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSumExp']) infer[op] = infer.ReduceSum;
for (const op of ['Identity', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Erf', 'Sigmoid', 'Tanh', 'Relu', 'LeakyRelu', 'Elu',
  'Gelu', 'Softplus', 'Sin', 'Cos', 'Tan', 'Softmax', 'LogSoftmax', 'Floor', 'Ceil', 'Round', 'Sign', 'Clip', 'HardSigmoid',
  'InstanceNormalization', 'GroupNormalization', 'BatchNormalization', 'CumSum', 'Trilu']) {
  infer[op] = same;
}
for (const op of ['ArgMax', 'ArgMin']) {
  infer[op] = (n, [x], env) => [{ elemType: DataType.INT64, dims: reduceDims({ ...n, attribute: [...(n.attribute ?? []), { name: 'axes', ints: [attrInt(n, 'axis', 0)], type: 7 }] }, x.dims, env) }];
}

// Folding of shape arithmetic (Shape → Gather → Unsqueeze → Concat, Mul of dims, ...) on symbolic values, so that
// exporter-style Reshape(x, Concat(Shape(x)[0], [-1], [8], [40])) still gets static dims where they exist.
type Sym = { dims: number[]; values: Dim[] };
const isInt = (t: number | null | undefined) => t === DataType.INT64 || t === DataType.INT32;

function symOf(env: ShapeEnv, name: string | undefined): Sym | undefined {
  if (!name) return undefined;
  const s = env.symbols.get(name);
  if (s) return s;
  const c = env.consts.get(name);
  return c && c.dims.length <= 1 && isInt(env.types.get(name)?.elemType) ? c : undefined;
}

function arith(op: string, a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') {
    return op === 'Mul' ? a * b : op === 'Add' ? a + b : op === 'Sub' ? a - b : b !== 0 ? Math.trunc(a / b) : null;
  }
  if (a === null || b === null) return null;
  if (op === 'Mul' && (a === 1 || b === 1)) return a === 1 ? b : a;
  if ((op === 'Div' && b === 1) || ((op === 'Add' || op === 'Sub') && b === 0)) return a;
  return `(${a}${{ Mul: '*', Add: '+', Sub: '-', Div: '/' }[op]}${b})`;
}

const folders: Record<string, ((n: NodeProto, env: ShapeEnv) => Sym | undefined) | undefined> = {
  Shape: (n, env) => {
    const x = env.types.get(n.input![0])?.dims;
    const len = env.types.get(n.output![0])?.dims?.[0];
    if (!x || typeof len !== 'number') return undefined;
    const start = Math.min(Math.max(norm(attrInt(n, 'start', 0), x.length), 0), x.length);
    return { dims: [len], values: x.slice(start, start + len) };
  },
  Gather: (n, env) => {
    const [x, i] = [symOf(env, n.input?.[0]), env.consts.get(n.input?.[1] ?? '')];
    if (!x || !i || x.dims.length !== 1) return undefined;
    return { dims: i.dims, values: i.values.map((k) => x.values[k < 0 ? k + x.values.length : k] ?? null) };
  },
  Concat: (n, env) => {
    const parts = (n.input ?? []).map((name) => symOf(env, name));
    if (parts.some((p) => !p || p.dims.length !== 1)) return undefined;
    const values = parts.flatMap((p) => p!.values);
    return { dims: [values.length], values };
  },
  Unsqueeze: (n, env) => {
    const x = symOf(env, n.input?.[0]);
    const t = env.types.get(n.output![0])?.dims;
    return x && t && t.length <= 1 && t.every((d) => typeof d === 'number') ? { dims: t as number[], values: x.values } : undefined;
  },
  Slice: (n, env) => {
    const x = symOf(env, n.input?.[0]);
    const [starts, ends] = [env.consts.get(n.input?.[1] ?? '')?.values, env.consts.get(n.input?.[2] ?? '')?.values];
    if (!x || x.dims.length !== 1 || !starts || !ends || n.input?.[4]) return undefined;
    const len = x.values.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + len : v, 0), len);
    const values = x.values.slice(clamp(starts[0]), clamp(ends[0]));
    return { dims: [values.length], values };
  },
  Cast: (n, env) => (isInt(attrInt(n, 'to', 0)) ? symOf(env, n.input?.[0]) : undefined),
  Identity: (n, env) => symOf(env, n.input?.[0]),
};
folders.Squeeze = folders.Unsqueeze;
folders.Reshape = folders.Unsqueeze;
for (const op of ['Mul', 'Add', 'Sub', 'Div']) {
  folders[op] = (n, env) => {
    const [a, b] = [symOf(env, n.input?.[0]), symOf(env, n.input?.[1])];
    if (!a || !b || !isInt(env.types.get(n.output![0])?.elemType)) return undefined;
    const len = Math.max(a.values.length, b.values.length);
    if ((a.values.length !== len && a.values.length !== 1) || (b.values.length !== len && b.values.length !== 1)) return undefined;
    const at = (v: Dim[], i: number) => v[v.length === 1 ? 0 : i];
    const values = Array.from({ length: len }, (_, i) => arith(op, at(a.values, i), at(b.values, i)));
    return { dims: a.dims.length >= b.dims.length ? a.dims : b.dims, values };
  };
}

/** Static or symbolic values of a small integer tensor (a shape being computed), if known. */
export function symbolicValues(env: ShapeEnv, name: string | undefined): Dim[] | undefined {
  return symOf(env, name)?.values;
}

/** Infers the outputs of one node (existing or emitted) and records them in env. */
export function inferNode(node: NodeProto, env: ShapeEnv): void {
  const outs = node.output ?? [];
  if (node.opType === 'Constant') {
    const t = (node.attribute ?? []).find((a) => a.name === 'value')?.t;
    if (t && outs[0]) addConstant(env, outs[0], t);
    else if (outs[0]) inferConstantAttr(node, env);
    return;
  }
  const ins = (node.input ?? []).map((name) => (name ? (env.types.get(name) ?? UNKNOWN) : UNKNOWN));
  const rule = (!node.domain || node.domain === 'ai.onnx') && infer[node.opType ?? ''];
  const results = rule ? rule(node, ins, env) : same(node, ins, env);
  outs.forEach((name, i) => {
    if (!name) return;
    const r = rule ? (results[i] ?? UNKNOWN) : UNKNOWN;
    const prior = env.types.get(name);
    // value_info from the file fills what our inference does not know
    env.types.set(name, { elemType: r.elemType ?? prior?.elemType ?? null, dims: r.dims ?? prior?.dims ?? null });
  });
  const fold = folders[node.opType ?? ''];
  const folded = fold && outs[0] ? fold(node, env) : undefined;
  if (folded && folded.values.length <= MAX_CONST) {
    if (folded.values.every((v) => typeof v === 'number')) env.consts.set(outs[0], folded as { dims: number[]; values: number[] });
    else env.symbols.set(outs[0], folded);
  }
}

function inferConstantAttr(node: NodeProto, env: ShapeEnv) {
  const name = node.output![0];
  const value = attrInts(node, 'value_ints');
  if (value) {
    env.types.set(name, { elemType: DataType.INT64, dims: [value.length] });
    env.consts.set(name, { dims: [value.length], values: value });
  } else if (hasAttr(node, 'value_int')) {
    env.types.set(name, { elemType: DataType.INT64, dims: [] });
    env.consts.set(name, { dims: [], values: [attrInt(node, 'value_int', 0)] });
  } else if (hasAttr(node, 'value_float')) {
    env.types.set(name, { elemType: DataType.FLOAT, dims: [] });
    env.consts.set(name, { dims: [], values: [attrFloat(node, 'value_float', 0)] });
  } else {
    env.types.set(name, UNKNOWN);
  }
}

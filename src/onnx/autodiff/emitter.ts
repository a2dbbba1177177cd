// The emitter appends gradient nodes and constants to the graph being differentiated and keeps the static
// type/shape knowledge (shapes.ts) up to date for every value it creates. Helpers here are the shape plumbing every
// rule needs: constants in the right float type, Shape-derived sizes, opset-dependent forms of Reduce*/Squeeze,
// and `unbroadcast`, which sums a gradient back to the shape of a broadcast operand using run-time shapes.
import { DataType, OnnxError, type GraphProto, type NodeProto, type TensorProto } from '../proto.ts';
import { makeTensor } from '../tensor.ts';
import { makeAttribute, type AttrValue } from '../builder.ts';
import { addConstant, inferNode, type Dim, type ShapeEnv } from './shapes.ts';

export interface Emitter {
  readonly opset: number;
  /** Prefix for emitted node/value names (set per differentiated node) and the node named in errors. */
  setScope(prefix: string, where: string): void;
  fail(message: string): never;
  op(type: string, inputs: string[], attrs?: Record<string, AttrValue | undefined>): string;
  ops(type: string, inputs: string[], attrs: Record<string, AttrValue | undefined>, outputs: number | string[]): string[];
  /** x converted to the element type of `like` (Cast when that type is known, else CastLike, opset 15+). */
  castLike(x: string, like: string): string;
  dims(x: string): Dim[];
  rank(x: string): number;
  elemType(x: string): number | null;
  constValues(x: string): number[] | undefined;
  /** A scalar constant in the float type of `like`. */
  scalar(value: number, like: string): string;
  int64s(values: number[], dims?: number[]): string;
  shape(x: string): string;
  /** Run-time sizes of x along `axes`, as a 1-D int64 tensor. */
  sizes(x: string, axes: number[]): string;
  reduce(type: 'ReduceSum' | 'ReduceMean', x: string, axes: number[], keepdims: boolean): string;
  unsqueeze(x: string, axes: number[]): string;
  squeeze(x: string, axes: number[]): string;
  transpose(x: string, perm: number[]): string;
  /** Sums g over the axes along which x was broadcast, giving x's shape. */
  unbroadcast(g: string, x: string): string;
  zerosLike(x: string): string;
  /** Zeros of a run-time shape, in the float type of `like`. */
  zerosOfShape(shape: string, like: string): string;
  onesLike(x: string): string;
}

const FLOATS = new Set<number>([DataType.FLOAT, DataType.DOUBLE]);

export function createEmitter(graph: GraphProto, env: ShapeEnv, opset: number): Emitter {
  const used = new Set<string>();
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) used.add(v.name ?? '');
  for (const t of graph.initializer ?? []) used.add(t.name ?? '');
  for (const n of graph.node ?? []) {
    used.add(n.name ?? '');
    for (const o of n.output ?? []) used.add(o);
  }
  let prefix = 'grad';
  let where = '';
  const shapeCache = new Map<string, string>();
  const constCache = new Map<string, string>();

  const unique = (base: string) => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };

  const addInitializer = (base: string, tensor: TensorProto) => {
    const name = unique(base);
    tensor.name = name;
    (graph.initializer ??= []).push(tensor);
    addConstant(env, name, tensor);
    return name;
  };

  const e: Emitter = {
    opset,
    setScope(p, w) {
      prefix = p;
      where = w;
    },
    fail(message) {
      throw new OnnxError(`autodiff${where ? ` (${where})` : ''}: ${message}`);
    },
    ops(type, inputs, attrs, outputs) {
      const name = unique(`${prefix}/${type}`);
      const outs = Array.isArray(outputs) ? outputs : Array.from({ length: outputs }, (_, i) => unique(`${name}_output_${i}`));
      const attribute = Object.entries(attrs)
        .filter((kv): kv is [string, AttrValue] => kv[1] !== undefined)
        .map(([k, v]) => makeAttribute(k, v));
      const node: NodeProto = { name, opType: type, input: inputs, output: outs, attribute, domain: '' };
      (graph.node ??= []).push(node);
      inferNode(node, env);
      return outs;
    },
    castLike(x, like) {
      const t = e.elemType(like);
      if (t !== null && t === e.elemType(x)) return x;
      if (t !== null) return e.op('Cast', [x], { to: t });
      if (opset < 15) e.fail(`the element type of "${like}" is unknown and CastLike needs opset 15`);
      return e.op('CastLike', [x, like]);
    },
    op(type, inputs, attrs = {}) {
      return e.ops(type, inputs, attrs, 1)[0];
    },
    dims(x) {
      const d = env.types.get(x)?.dims;
      if (!d) e.fail(`cannot infer the rank of "${x}" (give the model value_info or constant shape inputs)`);
      return d;
    },
    rank: (x) => e.dims(x).length,
    elemType: (x) => env.types.get(x)?.elemType ?? null,
    constValues: (x) => env.consts.get(x)?.values,
    scalar(value, like) {
      const t = e.elemType(like);
      const dtype = t !== null && FLOATS.has(t) ? t : DataType.FLOAT;
      const key = `s:${dtype}:${value}`;
      let name = constCache.get(key);
      if (!name) {
        const data = dtype === DataType.DOUBLE ? new Float64Array([value]) : new Float32Array([value]);
        name = addInitializer(`${prefix}/Constant`, makeTensor('', [], data, dtype));
        constCache.set(key, name);
      }
      return t === dtype ? name : e.castLike(name, like);
    },
    int64s(values, dims = [values.length]) {
      const key = `i:${dims}:${values}`;
      let name = constCache.get(key);
      if (!name) {
        name = addInitializer(`${prefix}/Constant`, makeTensor('', dims, BigInt64Array.from(values.map(BigInt))));
        constCache.set(key, name);
      }
      return name;
    },
    shape(x) {
      let s = shapeCache.get(x);
      if (!s) shapeCache.set(x, (s = e.op('Shape', [x])));
      return s;
    },
    sizes(x, axes) {
      const d = env.types.get(x)?.dims;
      if (d && axes.every((a) => typeof d[a] === 'number')) return e.int64s(axes.map((a) => d[a] as number));
      return e.op('Gather', [e.shape(x), e.int64s(axes)], { axis: 0 });
    },
    reduce(type, x, axes, keepdims) {
      const k = keepdims ? 1 : 0;
      if (type === 'ReduceSum' || opset >= 18) return e.op(type, [x, e.int64s(axes)], { keepdims: k, noop_with_empty_axes: type === 'ReduceSum' ? 1 : undefined });
      return e.op(type, [x], { axes, keepdims: k });
    },
    unsqueeze: (x, axes) => (axes.length ? e.op('Unsqueeze', [x, e.int64s(axes)]) : x),
    squeeze: (x, axes) => (axes.length ? e.op('Squeeze', [x, e.int64s(axes)]) : x),
    transpose: (x, perm) => (perm.every((p, i) => p === i) ? x : e.op('Transpose', [x], { perm })),
    unbroadcast(g, x) {
      const gd = e.dims(g);
      const xd = e.dims(x);
      const lead = gd.length - xd.length;
      if (lead < 0) e.fail(`gradient "${g}" has lower rank than its operand "${x}"`);
      const certain = Array.from({ length: lead }, (_, i) => i);
      const unsure: number[] = [];
      xd.forEach((d, i) => {
        const o = gd[lead + i];
        if (d === 1 && o !== 1) certain.push(lead + i);
        else if (!(typeof d === 'number' || d === o)) unsure.push(lead + i);
      });
      let t = certain.length ? e.reduce('ReduceSum', g, certain, true) : g;
      // A dim only known at run time may or may not be a broadcast 1: sum along it, keep the sum only where x's
      // dim is 1, then cut that axis to x's size (the sums are repeated along it, so any one of them will do).
      for (const a of unsure) {
        const isOne = e.op('Equal', [e.sizes(x, [a - lead]), e.int64s([1])]);
        t = e.op('Where', [isOne, e.reduce('ReduceSum', t, [a], true), t]);
      }
      if (unsure.length) {
        t = e.op('Slice', [t, e.int64s(unsure.map(() => 0)), e.sizes(x, unsure.map((a) => a - lead)), e.int64s(unsure)]);
      }
      return lead > 0 ? e.op('Reshape', [t, e.shape(x)]) : t;
    },
    zerosLike: (x) => filled(e.shape(x), x, 0),
    onesLike: (x) => filled(e.shape(x), x, 1),
    zerosOfShape: (shape, like) => filled(shape, like, 0),
  };

  function filled(shape: string, like: string, value: number): string {
    const t = e.elemType(like);
    const dtype = t !== null && FLOATS.has(t) ? t : DataType.FLOAT;
    const data = dtype === DataType.DOUBLE ? new Float64Array([value]) : new Float32Array([value]);
    const out = e.op('ConstantOfShape', [shape], { value: makeTensor('value', [1], data, dtype) });
    return t === dtype ? out : e.castLike(out, like);
  }

  return e;
}

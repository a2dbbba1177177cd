// float32 → float16 conversion of an exported graph (prepare-model --dtype float16), in the spirit of
// onnxconverter-common's convert_float_to_float16 with keep_io_types, but driven by a small element-type inference so
// Casts go only where a float value crosses between precisions:
//   - every float initializer, Constant, ConstantOfShape value and `Cast to=FLOAT` becomes float16, and so does every
//     float value computed from them; values are clamped to ±65504 (float16's largest finite value) instead of
//     overflowing to ±inf (CLIP's causal mask is float32's lowest, −3.4e38);
//   - the graph's inputs and outputs keep float32 (Casts at the edges), so callers feed what they fed before;
//   - Resize/Upsample `roi` and `scales` stay float32 (the ONNX spec types `scales` as tensor(float));
//   - the UNet's sinusoidal timestep embedding (`/time_proj/…` nodes) stays float32, as diffusers computes it even in
//     fp16 pipelines (get_timestep_embedding upcasts): in float16, 981·freq would be off by up to 0.5 rad.
// Weight bytes are converted while streaming (stream-onnx.ts `transform`); this file rewrites only the structure.
import { decodeHalfArray, floatToHalf } from '../lora/float16.ts';
import { AttributeType, DataType, int, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.ts';
import { inlineBytes } from './stream-onnx.ts';

const { FLOAT, FLOAT16, INT64, BOOL } = DataType;
const HALF_MAX = 65504;

/** Nodes kept in float32: a name prefix (torch's exporter names nodes by module path). */
export const FLOAT32_ISLANDS = ['/time_proj/'];

type Precision = 'f16' | 'f32';

const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin']);
const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);

function attrTensorType(node: NodeProto): number | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value' && a.t) return a.t.dataType ?? undefined;
    if (a.name === 'value_float' || a.name === 'value_floats') return FLOAT;
    if (a.name === 'value_int' || a.name === 'value_ints') return INT64;
  }
  return undefined;
}

/** Element type of every value, propagated through the nodes in order (ONNX graphs are topologically sorted). */
export function elementTypes(model: ModelProto): Map<string, number> {
  const g = model.graph!;
  const types = new Map<string, number>();
  for (const v of g.input ?? []) if (v.type?.tensorType?.elemType) types.set(v.name ?? '', v.type.tensorType.elemType);
  for (const t of g.initializer ?? []) types.set(t.name ?? '', t.dataType ?? 0);
  for (const node of g.node ?? []) {
    const op = node.opType ?? '';
    const input = (i: number) => types.get(node.input?.[i] ?? '');
    const firstKnown = () => (node.input ?? []).map((n) => types.get(n)).find((t) => t !== undefined);
    let t: number | undefined;
    if (op === 'Constant') t = attrTensorType(node);
    else if (op === 'ConstantOfShape') t = attrTensorType(node) ?? FLOAT;
    else if (op === 'Cast') t = int(node.attribute?.find((a) => a.name === 'to')?.i);
    else if (INT64_OUT.has(op)) t = INT64;
    else if (BOOL_OUT.has(op)) t = BOOL;
    else if (op === 'Where' || op === 'CastLike') t = input(1);
    else t = firstKnown();
    (node.output ?? []).forEach((o, i) => {
      if (!o) return;
      if (op === 'TopK' && i === 1) types.set(o, INT64);
      else if (t !== undefined) types.set(o, t);
    });
  }
  return types;
}

const clampHalf = (v: number) => floatToHalf(Number.isNaN(v) ? v : Math.max(-HALF_MAX, Math.min(HALF_MAX, v)));

/** float32 bytes → float16 bytes, clamped to float16's finite range. */
export function floatBytesToHalf(bytes: Uint8Array): Uint8Array {
  const f = new Float32Array(new Uint8Array(bytes).buffer);
  const h = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) h[i] = clampHalf(f[i]);
  return new Uint8Array(h.buffer);
}

/** Values as the float16 weights will hold them (rounded and clamped), back in float32. */
export function roundToHalf(values: Float32Array): Float32Array {
  return decodeHalfArray(Uint16Array.from(values, clampHalf));
}

/** The streaming transform for `convert`: float32 initializers listed there become float16 bytes. */
export function float16Transform(convert: ReadonlySet<string>) {
  return (tensor: TensorProto, bytes: Uint8Array) =>
    (tensor.dataType === FLOAT && convert.has(tensor.name ?? '') ? { dataType: FLOAT16, bytes: floatBytesToHalf(bytes) } : { dataType: tensor.dataType ?? 0, bytes });
}

function halfTensor(t: TensorProto): TensorProto {
  const bytes = inlineBytes(t) ?? new Uint8Array(0);
  const { floatData: _f, rawData: _r, ...rest } = t;
  return { ...rest, dataType: FLOAT16, rawData: floatBytesToHalf(bytes) };
}

export interface Float16Plan {
  model: ModelProto;
  /** Initializers whose bytes must be converted to float16 while streaming. */
  convert: Set<string>;
}

/** The float16 graph (structure only) and the initializers to convert; see the file header for the rules. */
export function planFloat16(model: ModelProto, islands: readonly string[] = FLOAT32_ISLANDS): Float16Plan {
  const g = model.graph!;
  const types = elementTypes(model);
  const isFloat = (name: string) => types.get(name) === FLOAT;
  const island = islandNodes(g.node ?? [], islands);
  const region = (node: NodeProto): Precision => (island.has(node) ? 'f32' : 'f16');
  /** The precision an input slot needs; 'any' for ops that read only the shape (a Cast there would be waste). */
  const required = (node: NodeProto, slot: number): Precision | 'any' => {
    if ((node.opType === 'Resize' && slot >= 1) || (node.opType === 'Upsample' && slot === 1)) return 'f32';
    if (node.opType === 'Shape' || node.opType === 'Size') return 'any';
    return region(node);
  };

  // Consumers of each value: constants (initializers, Constant nodes) take the precision their consumers need.
  const needs = new Map<string, Set<Precision>>();
  for (const node of g.node ?? []) {
    (node.input ?? []).forEach((name, slot) => {
      if (!name || !isFloat(name)) return;
      const want = required(node, slot);
      if (want !== 'any') (needs.get(name) ?? needs.set(name, new Set()).get(name)!).add(want);
    });
  }
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const constantPrecision = (name: string): Precision => {
    const n = needs.get(name);
    return n && n.size === 1 && n.has('f16') && !outputs.has(name) ? 'f16' : 'f32';
  };

  const produced = new Map<string, Precision>();
  for (const v of g.input ?? []) if (isFloat(v.name ?? '')) produced.set(v.name ?? '', 'f32');
  const convert = new Set<string>();
  const initializers = (g.initializer ?? []).map((t) => {
    if (t.dataType !== FLOAT) return t;
    const p = constantPrecision(t.name ?? '');
    produced.set(t.name ?? '', p);
    if (p === 'f32') return t;
    convert.add(t.name ?? '');
    // Small inline initializers are converted here; large ones (moved to shards) by the streaming transform.
    return inlineBytes(t) ? halfTensor(t) : t;
  });

  const nodes: NodeProto[] = [];
  const casts = new Map<string, string>();
  const castTo = (name: string, to: Precision): string => {
    const key = `${name}|${to}`;
    let out = casts.get(key);
    if (!out) {
      out = `${name}__${to}`;
      casts.set(key, out);
      nodes.push({ name: `${name}__cast_${to}`, opType: 'Cast', input: [name], output: [out], attribute: [{ name: 'to', type: AttributeType.INT, i: to === 'f16' ? FLOAT16 : FLOAT }], domain: '' });
    }
    return out;
  };

  for (const original of g.node ?? []) {
    const node: NodeProto = { ...original, input: [...(original.input ?? [])], attribute: [...(original.attribute ?? [])] };
    node.input = node.input!.map((name, slot) => {
      if (!name || !isFloat(name)) return name;
      const want = required(original, slot);
      const have = produced.get(name) ?? 'f32';
      return want === 'any' || have === want ? name : castTo(name, want);
    });
    const r = region(original);
    const op = node.opType;
    if (op === 'Constant' && isFloat(node.output?.[0] ?? '')) {
      const p = constantPrecision(node.output![0]);
      if (p === 'f16') node.attribute = node.attribute!.map((a) => (a.name === 'value' && a.t ? { ...a, t: halfTensor(a.t) } : a.name === 'value_float' || a.name === 'value_floats' ? toHalfValueAttr(a) : a));
      produced.set(node.output![0], p);
    } else {
      if (r === 'f16' && op === 'Cast') {
        node.attribute = node.attribute!.map((a) => (a.name === 'to' && int(a.i) === FLOAT ? { ...a, i: FLOAT16 } : a));
      }
      if (r === 'f16' && op === 'ConstantOfShape') {
        node.attribute = node.attribute!.map((a) => (a.name === 'value' && a.t && a.t.dataType === FLOAT ? { ...a, t: halfTensor(a.t) } : a));
      }
      for (const o of node.output ?? []) if (o && isFloat(o)) produced.set(o, r);
    }
    nodes.push(node);
  }

  // Graph outputs stay float32: a float16 value is renamed inside the graph and cast back under the output's name.
  const renamed = new Map<string, string>();
  for (const o of g.output ?? []) {
    const name = o.name ?? '';
    if (isFloat(name) && produced.get(name) === 'f16') renamed.set(name, `${name}__f16`);
  }
  if (renamed.size) {
    for (const node of nodes) {
      node.input = node.input?.map((n) => renamed.get(n) ?? n);
      node.output = node.output?.map((n) => renamed.get(n) ?? n);
    }
    for (const [name, inner] of renamed) {
      nodes.push({ name: `${name}__cast_f32`, opType: 'Cast', input: [inner], output: [name], attribute: [{ name: 'to', type: AttributeType.INT, i: FLOAT }], domain: '' });
    }
  }
  // value_info records float32 types for values that are now float16: ORT infers them again.
  return { model: { ...model, graph: { ...g, node: nodes, initializer: initializers, valueInfo: [] } }, convert };
}

/**
 * Nodes kept in float32: those named under an island prefix, plus the top-level nodes (`/Expand`, `/Cast`: no module
 * path) that feed them, e.g. the timestep's broadcast to the batch: a timestep such as 978.6 (Euler, DPM++) is not
 * representable in float16 (its spacing there is 0.5).
 */
function islandNodes(nodes: readonly NodeProto[], prefixes: readonly string[]): Set<NodeProto> {
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n);
  const island = new Set(nodes.filter((n) => prefixes.some((p) => (n.name ?? '').startsWith(p))));
  const stack = [...island];
  while (stack.length) {
    for (const input of stack.pop()!.input ?? []) {
      const p = producer.get(input);
      if (p && !island.has(p) && /^\/[^/]+$/.test(p.name ?? '')) {
        island.add(p);
        stack.push(p);
      }
    }
  }
  return island;
}

function toHalfValueAttr(a: NonNullable<NodeProto['attribute']>[number]) {
  const values = a.name === 'value_float' ? [a.f ?? 0] : (a.floats ?? []);
  const half = Uint16Array.from(values, clampHalf);
  const dims = a.name === 'value_float' ? [] : [values.length];
  return { name: 'value', type: AttributeType.TENSOR, t: { dims, dataType: FLOAT16, rawData: new Uint8Array(half.buffer) } };
}

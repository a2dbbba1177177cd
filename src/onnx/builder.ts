// A small builder for ONNX graphs written in TypeScript. Node names follow the PyTorch exporter's convention
// (`/down_blocks.0/attentions.0/.../to_q/MatMul`), because that is how LoRA keys find their weights in real exports
// (DESIGN §4); a scope stack produces them. Values get unique names; every op returns its output name(s).
import { AttributeType, DataType, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.ts';
import { makeTensor, type DenseData } from './tensor.ts';

/** An attribute value. Integers become INT attributes; wrap a float that happens to be whole with `float()`. */
export type AttrValue = number | number[] | string | TensorProto | { float: number } | { floats: number[] } | { graph: GraphProto };
export const float = (value: number) => ({ float: value });
export const floats = (values: number[]) => ({ floats: values });

export type Dim = number | string;
export const OPSET = 17;

export function makeAttribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    return value.every(Number.isInteger) ? { name, type: AttributeType.INTS, ints: value } : { name, type: AttributeType.FLOATS, floats: value };
  }
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  if ('graph' in value) return { name, type: AttributeType.GRAPH, g: value.graph };
  return { name, type: AttributeType.TENSOR, t: value as TensorProto };
}

export function valueInfo(name: string, elemType: number, shape?: readonly Dim[]): ValueInfoProto {
  const dims = shape?.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, shape: dims ? { dim: dims } : undefined } } };
}

export interface NodeOptions {
  /** Output count (default 1) or explicit output names. */
  outputs?: number | string[];
  /** Node name's last part; default the op type. */
  name?: string;
  domain?: string;
}

export function createGraphBuilder(graphName = 'graph', opset = OPSET) {
  const nodes: NodeProto[] = [];
  const inputs: ValueInfoProto[] = [];
  const outputs: ValueInfoProto[] = [];
  const initializers: TensorProto[] = [];
  const usedNames = new Set<string>();
  const scopes: string[] = [];

  function unique(base: string): string {
    let name = base;
    for (let i = 1; usedNames.has(name); i++) name = `${base}_${i}`;
    usedNames.add(name);
    return name;
  }

  const builder = {
    /** Runs `body` with `part` appended to the node-name scope (e.g. 'down_blocks.0'). */
    scope<T>(part: string, body: () => T): T {
      scopes.push(part);
      try {
        return body();
      } finally {
        scopes.pop();
      }
    },
    /** The module path of the current scope, diffusers style: 'down_blocks.0.attentions.0'. */
    modulePath(): string {
      return scopes.join('.');
    },
    input(name: string, elemType: number = DataType.FLOAT, shape?: readonly Dim[]): string {
      usedNames.add(name);
      inputs.push(valueInfo(name, elemType, shape));
      return name;
    },
    output(name: string, elemType: number = DataType.FLOAT, shape?: readonly Dim[]): string {
      outputs.push(valueInfo(name, elemType, shape));
      return name;
    },
    initializer(name: string, dims: readonly number[], data: DenseData): string {
      const unique_ = unique(name);
      initializers.push(makeTensor(unique_, dims, data));
      return unique_;
    },
    /** A constant scalar or tensor (an initializer with a generated name). */
    constant(data: DenseData, dims: readonly number[] = [data.length]): string {
      return builder.initializer(`${scopes.length ? `/${scopes.join('/')}/` : ''}Constant`, dims, data);
    },
    scalar(value: number): string {
      return builder.constant(new Float32Array([value]), []);
    },
    int64s(values: number[]): string {
      return builder.constant(BigInt64Array.from(values.map(BigInt)), [values.length]);
    },
    node(opType: string, nodeInputs: string[], attributes: Record<string, AttrValue | undefined> = {}, options: NodeOptions = {}): string[] {
      const name = unique(`/${[...scopes, options.name ?? opType].join('/')}`);
      const outs = Array.isArray(options.outputs)
        ? options.outputs.map((o) => (usedNames.add(o), o))
        : Array.from({ length: options.outputs ?? 1 }, (_, i) => unique(`${name}_output_${i}`));
      const attribute = Object.entries(attributes)
        .filter((entry): entry is [string, AttrValue] => entry[1] !== undefined)
        .map(([key, value]) => makeAttribute(key, value));
      nodes.push({ name, opType, input: nodeInputs, output: outs, attribute, domain: options.domain ?? '' });
      return outs;
    },
    /** `node` for the common single-output case. */
    op(opType: string, nodeInputs: string[], attributes: Record<string, AttrValue | undefined> = {}, name?: string): string {
      return builder.node(opType, nodeInputs, attributes, { name })[0];
    },
    build(): ModelProto {
      return {
        irVersion: 8,
        producerName: 'npo-playground',
        opsetImport: [{ domain: '', version: opset }],
        graph: { name: graphName, node: nodes, input: inputs, output: outputs, initializer: initializers },
      };
    },
  };
  return builder;
}

export type GraphBuilder = ReturnType<typeof createGraphBuilder>;

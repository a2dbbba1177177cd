// What the rewriting passes (inject-lora.ts, stack-weight-sets.ts) share: emitting the nodes that replace one node,
// named under a prefix (`/blk/to_q/MatMul_lora/down`) so they stay readable next to the exporter's own names, and
// int64 constants (shapes, axes) as initializers under the same prefix.
import type { AttributeProto, NodeProto, TensorProto } from '../proto.ts';
import { makeTensor } from '../tensor.ts';

export function createNodeEmitter(prefix: string, addInitializer: (t: TensorProto) => void, nodes: NodeProto[] = []) {
  return {
    nodes,
    /** Appends a node; its output is `<prefix>/<local>` unless given (the last node takes over the original output). */
    emit(opType: string, inputs: string[], local: string, attributes: AttributeProto[] = [], output = `${prefix}/${local}`): string {
      nodes.push({ name: `${prefix}/${local}`, opType, input: inputs, output: [output], attribute: attributes, domain: '' });
      return output;
    },
    /** An int64 vector initializer. */
    ints(local: string, values: number[]): string {
      const name = `${prefix}/${local}`;
      addInitializer(makeTensor(name, [values.length], BigInt64Array.from(values.map(BigInt))));
      return name;
    },
    /** A float32 scalar initializer. */
    scalar(local: string, value: number): string {
      const name = `${prefix}/${local}`;
      addInitializer(makeTensor(name, [], new Float32Array([value])));
      return name;
    },
  };
}

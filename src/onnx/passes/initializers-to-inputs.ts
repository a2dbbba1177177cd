// Promotes chosen initializers to graph inputs (DESIGN decision 1: "weights as graph inputs"). One ORT session then
// serves both CFG branches: θ_pos and θ_neg are just two sets of values for these inputs.
import { OnnxError, int, type ModelProto, type TensorProto } from '../proto.ts';
import { valueInfo } from '../builder.ts';

export interface PromotedWeight {
  name: string;
  dims: number[];
  dataType: number;
  /** The original initializer (possibly pointing at external data); the caller reads its values from here. */
  tensor: TensorProto;
}

export function initializersToInputs(model: ModelProto, names: Iterable<string>): { model: ModelProto; promoted: PromotedWeight[] } {
  const graph = model.graph!;
  const wanted = new Set(names);
  const byName = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
  const missing = [...wanted].filter((n) => !byName.has(n));
  if (missing.length) throw new OnnxError(`cannot promote to inputs: no initializer named ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` (and ${missing.length - 5} more)` : ''}`);

  const promoted: PromotedWeight[] = [...wanted].map((name) => {
    const tensor = byName.get(name)!;
    return { name, dims: (tensor.dims ?? []).map(int), dataType: tensor.dataType ?? 0, tensor };
  });
  const newInputs = promoted.map((p) => valueInfo(p.name, p.dataType, p.dims));
  // Older IR versions list initializers among the inputs too; never list a name twice.
  const keptInputs = (graph.input ?? []).filter((i) => !wanted.has(i.name ?? ''));
  return {
    model: {
      ...model,
      graph: {
        ...graph,
        input: [...keptInputs, ...newInputs],
        initializer: (graph.initializer ?? []).filter((t) => !wanted.has(t.name ?? '')),
      },
    },
    promoted,
  };
}

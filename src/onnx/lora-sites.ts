// Finds the weights a LoRA can target in an ONNX graph. Exporters keep the module path in the node name
// (`/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul`) while the weight itself is often an anonymous,
// pre-transposed initializer (`onnx::MatMul_1234`, [in, out]); so we match by node name (DESIGN §4, as onnx-web does).
import { OnnxError, int, type AttributeProto, type ModelProto, type NodeProto } from './proto.ts';

/** 'in-out': W is [in, out] (y = x·W, diffusers MatMul exports). 'out-in': W is [out, in] (Linear, Gemm transB, 1×1 Conv). */
export type WeightLayout = 'in-out' | 'out-in';

export interface LoraSite {
  modulePath: string;
  weightName: string;
  layout: WeightLayout;
  inFeatures: number;
  outFeatures: number;
  nodeName: string;
  opType: 'MatMul' | 'Gemm' | 'Conv';
  /** The weight's full dims, e.g. [out, in, 1, 1] for a 1×1 Conv. */
  dims: number[];
}

/** DESIGN §2: the official NPO/DPO LoRAs target the attention projections of every transformer block. */
export const ATTENTION_TARGETS = ['to_q', 'to_k', 'to_v', 'to_out.0'];

/** Module-name suffixes to match, or 'all': every Linear and 1×1 Conv with a module path (what a LoRA a person brings may target). */
export type SiteTargets = readonly string[] | 'all';

/** '/down_blocks.0/attentions.0/.../to_q/MatMul' → 'down_blocks.0.attentions.0....to_q'. */
export function modulePathOfNode(nodeName: string): string {
  const parts = nodeName.replace(/^\//, '').split('/');
  return parts.slice(0, -1).join('.');
}

const attr = (node: NodeProto, name: string): AttributeProto | undefined => node.attribute?.find((a) => a.name === name);

export function findLoraSites(model: ModelProto, targets: SiteTargets = ATTENTION_TARGETS): LoraSite[] {
  const graph = model.graph!;
  const initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', (t.dims ?? []).map(int)]));
  const sites: LoraSite[] = [];
  const seen = new Map<string, string>();
  for (const node of graph.node ?? []) {
    const modulePath = modulePathOfNode(node.name ?? '');
    if (!modulePath || (targets !== 'all' && !targets.some((t) => modulePath === t || modulePath.endsWith(`.${t}`)))) continue;
    const site = siteOf(node, modulePath, initializers);
    if (!site) continue;
    const previous = seen.get(modulePath);
    if (previous) throw new OnnxError(`module ${modulePath} has two weight nodes (${previous}, ${node.name}); cannot tell which one a LoRA targets`);
    seen.set(modulePath, node.name ?? '');
    sites.push(site);
  }
  return sites;
}

function siteOf(node: NodeProto, modulePath: string, initializers: Map<string, number[]>): LoraSite | undefined {
  const weightName = node.input?.[1] ?? '';
  const dims = initializers.get(weightName);
  if (!dims) return undefined;
  if (!dims.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new OnnxError(`weight ${weightName} of ${node.name} has dims [${dims.slice(0, 8)}]; a LoRA target needs positive integer dims`);
  }
  const common = { modulePath, weightName, nodeName: node.name ?? '', dims };
  if (node.opType === 'MatMul' && dims.length === 2) {
    return { ...common, opType: 'MatMul', layout: 'in-out', inFeatures: dims[0], outFeatures: dims[1] };
  }
  if (node.opType === 'Gemm' && dims.length === 2) {
    const transB = int(attr(node, 'transB')?.i) === 1;
    return transB
      ? { ...common, opType: 'Gemm', layout: 'out-in', inFeatures: dims[1], outFeatures: dims[0] }
      : { ...common, opType: 'Gemm', layout: 'in-out', inFeatures: dims[0], outFeatures: dims[1] };
  }
  if (node.opType === 'Conv' && dims.length === 4 && dims[2] === 1 && dims[3] === 1) {
    return { ...common, opType: 'Conv', layout: 'out-in', inFeatures: dims[1], outFeatures: dims[0] };
  }
  return undefined;
}
